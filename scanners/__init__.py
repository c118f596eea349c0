"""Secret-scanning front ends over ``vsms_guard.keys``: trees, staged files, git history, and a
detect-secrets plugin. Every front end turns bytes into ``files.Hit``s with the same code, so
they can never disagree about what a key is."""
