//! The developer console.
