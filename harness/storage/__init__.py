"""The store: its layout (paths), its files (atomic, digested, locked) and its typed records."""
