//! gekko as a Model Context Protocol server: trading tools over stdio and streamable HTTP, behind a server-side risk guard.
