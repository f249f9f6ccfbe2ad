"""The conductor: writes what guests report to the store; guests never touch it."""
