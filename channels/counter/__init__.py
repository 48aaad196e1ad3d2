"""The assisted channel: Post Office counter staff work citizens' cases."""
