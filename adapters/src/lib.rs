//! The live path adapters (being built).
