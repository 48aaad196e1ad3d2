"""The Post Office side: branch queues and counter tasks (desk), the branches, counter
staff accounts and the audit of what staff do."""
