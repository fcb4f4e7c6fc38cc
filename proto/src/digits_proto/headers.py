"""NATS header names used on the bus."""

MSG_ID = "Nats-Msg-Id"
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
CORRELATION_ID = "Digits-Correlation-Id"
CAUSATION_ID = "Digits-Causation-Id"
# A command's or ticket's own id (an event's is its `event_id`): what its effects name as cause.
MESSAGE_ID = "Digits-Message-Id"
# `<tag>/<version>` of the message (digits_proto.versions): what a reader upcasts from.
SCHEMA = "Digits-Schema"
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"
