//! Relabeling with Prometheus's semantics (`relabel_configs`, `metric_relabel_configs`).
