//! What the remediation actor uses: Deployments and StatefulSets (`GET`), their scale
//! subresource (`GET`, merge `PATCH`), Leases (`GET`, `POST`, `PUT` checked by
//! resourceVersion: a stale one is `409 Conflict`) and `events.k8s.io/v1` Events (`POST`).
//! Every call is logged as `METHOD path [body]`; [`FakeApiServer::forbid`] answers `403` to
//! the calls that start with a given `METHOD path-prefix`, as RBAC would.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::{FakeApiServer, Inner, status};

/// The routes, added to the server's router.
pub(super) fn routes(r: Router<FakeApiServer>) -> Router<FakeApiServer> {
    r.route("/apis/apps/v1/namespaces/{ns}/{kind}/{name}", get(workload))
        .route(
            "/apis/apps/v1/namespaces/{ns}/{kind}/{name}/scale",
            get(scale).patch(scale),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            axum::routing::post(lease_create),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
            get(lease).put(lease),
        )
        .route(
            "/apis/events.k8s.io/v1/namespaces/{ns}/events",
            axum::routing::post(event_create),
        )
}

fn json_response(v: &Value) -> Response {
    use axum::response::IntoResponse;
    ([("content-type", "application/json")], v.to_string()).into_response()
}

/// Logs the call; `Some(403)` when it is forbidden.
fn call(inner: &mut Inner, method: &Method, path: &str, body: &[u8]) -> Option<Response> {
    let line = if body.is_empty() {
        format!("{method} {path}")
    } else {
        format!("{method} {path} {}", String::from_utf8_lossy(body))
    };
    inner.calls.push(line.clone());
    inner
        .forbidden
        .iter()
        .any(|p| line.starts_with(p.as_str()))
        .then(|| status(403, "Forbidden", &format!("forbidden: {method} {path}")))
}

async fn workload(
    State(s): State<FakeApiServer>,
    UrlPath((ns, kind, name)): UrlPath<(String, String, String)>,
    method: Method,
    uri: axum::http::Uri,
) -> Response {
    let mut inner = s.inner.lock().unwrap();
    if let Some(r) = call(&mut inner, &method, uri.path(), &[]) {
        return r;
    }
    match inner.workloads.get(&(kind.clone(), ns, name.clone())) {
        Some(w) => json_response(w),
        None => status(404, "NotFound", &format!("{kind} \"{name}\" not found")),
    }
}

async fn scale(
    State(s): State<FakeApiServer>,
    UrlPath((ns, kind, name)): UrlPath<(String, String, String)>,
    method: Method,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let mut inner = s.inner.lock().unwrap();
    if let Some(r) = call(&mut inner, &method, uri.path(), &body) {
        return r;
    }
    let key = (kind.clone(), ns.clone(), name.clone());
    let Some(w) = inner.workloads.get_mut(&key) else {
        return status(404, "NotFound", &format!("{kind} \"{name}\" not found"));
    };
    if method == Method::PATCH {
        let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(n) = patch["spec"]["replicas"].as_i64() else {
            return status(422, "Invalid", "spec.replicas required");
        };
        w["spec"]["replicas"] = json!(n);
    }
    let replicas = w["spec"]["replicas"].as_i64().unwrap_or(0);
    let out = json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": name, "namespace": ns, "uid": w["metadata"]["uid"]},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas},
    });
    drop(inner);
    s.wake();
    json_response(&out)
}

async fn lease(
    State(s): State<FakeApiServer>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    method: Method,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let mut inner = s.inner.lock().unwrap();
    if let Some(r) = call(&mut inner, &method, uri.path(), &[]) {
        return r;
    }
    let key = (ns, name.clone());
    if method == Method::GET {
        return match inner.leases.get(&key) {
            Some(l) => json_response(l),
            None => status(404, "NotFound", &format!("leases \"{name}\" not found")),
        };
    }
    let mut new: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return status(400, "BadRequest", &e.to_string()),
    };
    let Some(old) = inner.leases.get(&key) else {
        return status(404, "NotFound", &format!("leases \"{name}\" not found"));
    };
    if new["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"] {
        return status(409, "Conflict", "the object has been modified");
    }
    inner.rv += 1;
    new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
    inner.leases.insert(key, new.clone());
    json_response(&new)
}

async fn lease_create(
    State(s): State<FakeApiServer>,
    UrlPath(ns): UrlPath<String>,
    method: Method,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let mut inner = s.inner.lock().unwrap();
    if let Some(r) = call(&mut inner, &method, uri.path(), &[]) {
        return r;
    }
    let mut new: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return status(400, "BadRequest", &e.to_string()),
    };
    let name = new["metadata"]["name"].as_str().unwrap_or("").to_string();
    let key = (ns.clone(), name.clone());
    if inner.leases.contains_key(&key) {
        return status(
            409,
            "AlreadyExists",
            &format!("leases \"{name}\" already exists"),
        );
    }
    inner.rv += 1;
    new["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
    new["metadata"]["namespace"] = json!(ns);
    inner.leases.insert(key, new.clone());
    json_response(&new)
}

async fn event_create(
    State(s): State<FakeApiServer>,
    UrlPath(_ns): UrlPath<String>,
    method: Method,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let mut inner = s.inner.lock().unwrap();
    if let Some(r) = call(&mut inner, &method, uri.path(), &[]) {
        return r;
    }
    let ev: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.kube_events.push(ev.clone());
    json_response(&ev)
}

impl FakeApiServer {
    /// A Deployment (`kind` = `deployments`) or StatefulSet (`statefulsets`) with `replicas`,
    /// and the annotations given.
    pub fn put_workload(
        &self,
        kind: &str,
        ns: &str,
        name: &str,
        replicas: i64,
        annotations: Value,
    ) {
        let api_kind = if kind == "deployments" {
            "Deployment"
        } else {
            "StatefulSet"
        };
        let w = json!({
            "apiVersion": "apps/v1", "kind": api_kind,
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                         "annotations": annotations, "resourceVersion": "1"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": "bot"}]}}},
        });
        self.inner
            .lock()
            .unwrap()
            .workloads
            .insert((kind.into(), ns.into(), name.into()), w);
    }

    /// The workload's `spec.replicas`.
    pub fn replicas(&self, kind: &str, ns: &str, name: &str) -> Option<i64> {
        self.inner
            .lock()
            .unwrap()
            .workloads
            .get(&(kind.into(), ns.into(), name.into()))
            .and_then(|w| w["spec"]["replicas"].as_i64())
    }

    /// A Lease as another holder keeps it (renewed now).
    pub fn put_lease(&self, ns: &str, name: &str, holder: &str, renewed: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.rv += 1;
        let l = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": inner.rv.to_string()},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30,
                     "renewTime": renewed, "acquireTime": renewed},
        });
        inner.leases.insert((ns.into(), name.into()), l);
    }

    /// The Lease's holder.
    pub fn lease_holder(&self, ns: &str, name: &str) -> Option<String> {
        self.inner
            .lock()
            .unwrap()
            .leases
            .get(&(ns.into(), name.into()))
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(String::from))
    }

    /// Answers 403 to every call starting with `prefix` (`"PATCH /apis/apps/v1/..."`).
    pub fn forbid(&self, prefix: &str) {
        self.inner.lock().unwrap().forbidden.push(prefix.into());
    }

    /// The calls to the routes above, in order: `METHOD path [body]`.
    pub fn calls(&self) -> Vec<String> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Events created.
    pub fn kube_events(&self) -> Vec<Value> {
        self.inner.lock().unwrap().kube_events.clone()
    }
}
