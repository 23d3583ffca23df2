"""The school staff console's domain: staff accounts and second factors, scope, families, inbox, funnel,
campaigns (no Flask, no SQLAlchemy)."""
