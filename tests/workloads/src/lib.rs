//! End-to-end tests of herd with real stateful programs; see `tests/`.
//! Run by `scripts/test.d/60-workloads.sh`, which installs the programs.
