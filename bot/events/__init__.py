"""GitHub event handlers, one module per event family, each exporting a gidgethub Router."""
