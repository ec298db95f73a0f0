//! (being built; see the workspace issues)
