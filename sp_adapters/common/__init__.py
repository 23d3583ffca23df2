"""What the demo service providers share: app shell, store and local sessions, directory, command line."""
