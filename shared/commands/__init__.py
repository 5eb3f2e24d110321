"""The operators' commands that the Procfile, compose and Kubernetes run."""
