"""Recovery ("Identifiant oublié ?", "Mot de passe oublié ?") and the account page's own changes."""
