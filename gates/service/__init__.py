"""The inference service: ``python -m gates serve`` and the ``serve`` gate (docs/serving.md).

``validate`` turns a request body into a contract-checked feature table or a problem (RFC 9457);
``auth`` holds the API-key hashes; ``monitor`` the Prometheus metrics, input drift, anomaly
score and feedback spool; ``app`` the Starlette application; ``server`` loads a verified model
and runs the application on uvicorn.
"""
