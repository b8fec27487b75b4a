//! Kubernetes JSON captures (kubectl get pods/events -o json, watch streams) -> Observations.
