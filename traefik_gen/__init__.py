"""traefik-gen: Traefik file-provider configuration from a Dokploy database."""

__version__ = "0.1.0"
