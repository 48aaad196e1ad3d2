"""What the tests share: helpers and data, never tests. Test modules import from here,
not from one another."""
