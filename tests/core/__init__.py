"""The core without its channels: the catalogue, validation, routing, the case store, the
`router` command, translations and the architecture of the code itself."""
