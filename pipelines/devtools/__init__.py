"""Development tools kept out of the build and the refresh: the offline API emulator."""
