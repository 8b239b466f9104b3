"""Running commands and moving files on nodes: ssh (asyncssh) and local transports."""
