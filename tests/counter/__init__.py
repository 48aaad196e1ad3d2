"""The assisted channel: Post Office branches and counter staff."""
