"""Activation: parent self-enrolment by SMS and provisional credentials, as server-side state machines."""
