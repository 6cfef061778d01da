"""Mail: the IMAP intake, the routing of a parsed mail into the desk, mail parsing, and building and sending mail."""
