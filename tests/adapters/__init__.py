"""Departments: the adapter contract's conformance kit, external adapters, webhooks."""
