"""NATS header names used on the bus."""

MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
CORRELATION_ID = "Digits-Correlation-Id"
CAUSATION_ID = "Digits-Causation-Id"
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"
