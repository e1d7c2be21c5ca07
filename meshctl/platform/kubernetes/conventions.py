"""The names the mesh uses on Kubernetes: what `meshctl install` creates and `meshctl inject` adds to a pod.

Control plane (namespace `meshctl-system`)
------------------------------------------
- Deployments `meshctl-control` (identity, discovery, configuration; gRPC API port 8086 "grpc", admin 9996
  "admin", proxy injector 8443 "webhook") and `meshctl-prometheus` (port 9090 "web"), each labelled
  `app.kubernetes.io/version=<meshctl version>`, each behind a Service of the same name, each running as
  the ServiceAccount of the same name, bound to the ClusterRole of the same name.
- Every control-plane pod carries `meshctl.io/control-plane-ns=meshctl-system` and
  `meshctl.io/control-plane-component=<control|prometheus>`.
- ConfigMap `meshctl-config`, key `config.json`: the control plane's settings (a JSON object).
- ConfigMap `meshctl-identity-trust-anchors`, key `ca-bundle.crt`: the trust anchors (PEM bundle).
- Secret `meshctl-identity-issuer` (type kubernetes.io/tls), keys `tls.crt` / `tls.key`: the issuer.
- Secret `meshctl-injector-tls` (type kubernetes.io/tls), keys `tls.crt` / `tls.key` / `ca.crt`: the proxy
  injector's serving certificate (for `meshctl-control.meshctl-system.svc`) and the CA that signed it, which
  the MutatingWebhookConfiguration `meshctl-proxy-injector` carries as its caBundle; mounted in the control
  plane's pod at `/var/run/meshctl/injector`. The webhook sends pod CREATEs of every namespace but the
  cluster's own and `meshctl-system`, except pods or namespaces labelled `meshctl.io/inject: disabled`
  (selectors see labels only); the injector decides by the annotation.
- ConfigMap `meshctl-prometheus-config`, key `prometheus.yml`: the scrape configuration, whose targets carry
  the labels the local mesh's Prometheus gives them (namespace, pod, deployment, component).
- One CustomResourceDefinition per resource kind (`CRD_VERSIONS`): `serviceprofiles.meshctl.io`,
  `meshingresses.meshctl.io`, `faultinjections.meshctl.io` and `egresses.meshctl.io` serving `meshctl.io/v1alpha1`;
  `trafficsplits.split.smi-spec.io` (v1alpha4), `httproutegroups.specs.smi-spec.io` (v1alpha4) and
  `traffictargets.access.smi-spec.io` (v1alpha3), the SMI shapes. Each carries the openAPIV3 schema
  `meshctl apply` validates with (meshctl.resources: the same object).

Data plane
----------
- A meshed pod carries the label `meshctl.io/control-plane-ns=meshctl-system` (so one label-selected list
  finds every meshed pod of the cluster), the annotation `meshctl.io/proxy-version=<version>` and a
  sidecar container named `meshctl-proxy` whose admin server listens on port 4191 of the pod's IP.
- `meshctl inject` marks a pod template with the annotation `meshctl.io/inject: enabled`; the proxy injector
  (a mutating admission webhook served by `meshctl-control` on port 8443 "webhook", path `/inject`, behind
  the Service `meshctl-control`) then adds the init container `meshctl-init` (redirects the pod's traffic to
  the proxy) and the sidecar `meshctl-proxy`. `meshctl.io/debug-sidecar: enabled` adds the container
  `meshctl-debug` too. Images: `ghcr.io/meshctl/meshctl:<version>` (control plane, proxy and init) and
  `ghcr.io/meshctl/debug:<version>` (tshark, tcpdump, curl).
- Its identity is `workload_identity(<service account>, <namespace>)`; its deployment is the name of the
  ReplicaSet that owns it without the `pod-template-hash` suffix.

Injected pod (what `meshctl inject --manual` writes and the injector patches in, meshctl.inject.containers)
-----------------------------------------------------------------------------------------------------------
- `meshctl-proxy` runs `python -m meshctl.proxy --config-env MESHCTL_PROXY_CONFIG` as user 2102: its
  ProxyConfig is that variable's JSON, in which Kubernetes expands `$(MESHCTL_POD_NAME)`,
  `$(MESHCTL_POD_NAMESPACE)` and `$(MESHCTL_SERVICE_ACCOUNT)` (downward API variables declared before it).
  Inbound listener 0.0.0.0:4143 (mTLS, forwards to the app's first declared container port on 127.0.0.1),
  outbound 127.0.0.1:4140, admin 0.0.0.0:4191, tap 0.0.0.0:4190; control plane
  `meshctl-control.meshctl-system.svc.cluster.local:8086`.
- Identity: a projected service account token (audience `identity.meshctl.io`) in the volume
  `meshctl-identity-token` at /var/run/secrets/meshctl.io/serviceaccount/token; the trust anchors from the
  ConfigMap `meshctl-identity-trust-anchors` of the pod's own namespace (a ConfigMap cannot be mounted across
  namespaces: the control plane keeps a copy in each meshed namespace, as istiod does with its root cert),
  volume `meshctl-trust-anchors` at /var/run/meshctl/identity.
- `meshctl-init` (NET_ADMIN, NET_RAW) redirects with iptables (nat table): TCP to the app port → 4143;
  TCP the app sends out (not from user 2102, not to loopback) → 4140.
- The injector is on when the control plane's `config.json` has `"webhook": {"listen": "0.0.0.0:8443",
  "cert": ..., "key": ...}` (PEM files, re-read when they change): a certificate for
  `meshctl-control.meshctl-system.svc`, whose CA is the MutatingWebhookConfiguration's caBundle.
"""

from __future__ import annotations

CONTROL_NS = "meshctl-system"
CONTROL_DEPLOYMENT = "meshctl-control"
PROMETHEUS_DEPLOYMENT = "meshctl-prometheus"
DEPLOYMENTS = (CONTROL_DEPLOYMENT, PROMETHEUS_DEPLOYMENT)
CONTROL_GRPC_PORT = 8086
CONTROL_ADMIN_PORT = 9996
PROMETHEUS_PORT = 9090
PROMETHEUS_CONFIG_MAP = "meshctl-prometheus-config"
PROMETHEUS_CONFIG_KEY = "prometheus.yml"
PROMETHEUS_IMAGE = "quay.io/prometheus/prometheus:v2.53.3"  # an LTS release

MESH_LABEL = "meshctl.io/control-plane-ns"  # value: CONTROL_NS, on control-plane and meshed pods
COMPONENT_LABEL = "meshctl.io/control-plane-component"
VERSION_LABEL = "app.kubernetes.io/version"  # on the control plane's deployments
PROXY_VERSION_ANNOTATION = "meshctl.io/proxy-version"
PROXY_CONTAINER = "meshctl-proxy"
PROXY_ADMIN_PORT = 4191
PROXY_TAP_PORT = 4190

INJECT_ANNOTATION = "meshctl.io/inject"  # value "enabled" (or "disabled" to opt a pod out of a namespace)
DEBUG_SIDECAR_ANNOTATION = "meshctl.io/debug-sidecar"  # value "enabled"
INIT_CONTAINER = "meshctl-init"
DEBUG_CONTAINER = "meshctl-debug"
INJECTOR_SERVICE = CONTROL_DEPLOYMENT
INJECTOR_PORT = 8443
INJECTOR_PATH = "/inject"
INJECTOR_WEBHOOK = "meshctl-proxy-injector"  # the MutatingWebhookConfiguration
INJECTOR_TLS_SECRET = "meshctl-injector-tls"
INJECTOR_TLS_DIR = "/var/run/meshctl/injector"  # where meshctl-control mounts that Secret (tls.crt, tls.key)
IMAGE_REPOSITORY = "ghcr.io/meshctl/meshctl"
# What never receives a proxy: the cluster's own system namespaces.
UNMESHED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
DEBUG_IMAGE_REPOSITORY = "ghcr.io/meshctl/debug"

# The injected proxy (see "Injected pod" above).
CONTROL_API_PORT = 8086
CONTROL_ADDRESS = f"{CONTROL_DEPLOYMENT}.{CONTROL_NS}.svc.cluster.local:{CONTROL_API_PORT}"
PROXY_INBOUND_PORT = 4143
PROXY_OUTBOUND_PORT = 4140
PROXY_UID = 2102  # the init container's rules leave this user's traffic alone (no redirect loop)
PROXY_CONFIG_ENV = "MESHCTL_PROXY_CONFIG"
POD_NAME_ENV = "MESHCTL_POD_NAME"
POD_NAMESPACE_ENV = "MESHCTL_POD_NAMESPACE"
SERVICE_ACCOUNT_ENV = "MESHCTL_SERVICE_ACCOUNT"
TOKEN_VOLUME = "meshctl-identity-token"
TOKEN_DIR = "/var/run/secrets/meshctl.io/serviceaccount"
TOKEN_AUDIENCE = "identity.meshctl.io"
TOKEN_EXPIRATION_S = 86400
ANCHORS_VOLUME = "meshctl-trust-anchors"
ANCHORS_DIR = "/var/run/meshctl/identity"
INBOUND_CHAIN = "MESHCTL_INBOUND"
OUTBOUND_CHAIN = "MESHCTL_OUTBOUND"

CONFIG_MAP = "meshctl-config"
CONFIG_KEY = "config.json"
ANCHORS_CONFIG_MAP = "meshctl-identity-trust-anchors"
ANCHORS_KEY = "ca-bundle.crt"
ISSUER_SECRET = "meshctl-identity-issuer"

CRD_GROUP = "meshctl.io"
CRD_VERSION = "v1alpha1"
# Every CRD `meshctl install` renders, and the version it serves (its kind's canonical apiVersion).
CRD_VERSIONS = {
    "serviceprofiles.meshctl.io": "v1alpha1",
    "meshingresses.meshctl.io": "v1alpha1",
    "trafficsplits.split.smi-spec.io": "v1alpha4",
    "httproutegroups.specs.smi-spec.io": "v1alpha4",
    "traffictargets.access.smi-spec.io": "v1alpha3",
    "faultinjections.meshctl.io": "v1alpha1",
    "egresses.meshctl.io": "v1alpha1",
}
CRDS = tuple(CRD_VERSIONS)

MIN_KUBERNETES = (1, 27)
