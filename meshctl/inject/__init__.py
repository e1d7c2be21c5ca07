"""Adding the mesh to Kubernetes workloads: `meshctl inject`/`uninject` and the proxy injector webhook.

documents (reading manifests, finding pod templates) → pod (the pure pod mutation and its inverse) ←
containers (what is added) and redirect (the init container's rules); patch (RFC 6902 JSONPatch) and
webhook (AdmissionReview v1) serve the injector. None of it imports a Kubernetes client.
"""
