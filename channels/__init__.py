"""The ways in: Flask blueprints and the app factory."""
