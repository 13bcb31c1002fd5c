"""One Logger and one Tracer for the shared code and the handlers.

The service name comes from POWERTOOLS_SERVICE_NAME (set per function by the infrastructure).
Tracing is off outside Lambda. Never log or trace prompts, answers or tokens: handlers and
traced methods use `capture_response=False`.
"""

from aws_lambda_powertools import Logger, Tracer

logger = Logger()
tracer = Tracer()
