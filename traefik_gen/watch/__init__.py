"""The sidecar: keeps Traefik's directory converged with the sources, forever."""
