"""Council's error tree. Every message says what to do about it.

    CouncilError
    ├── ConfigError            a setting is wrong or missing (names the setting)
    ├── ModelNotFoundError     a model/head id nobody serves
    ├── ModelPrepareError      the default weights are missing or cannot be converted
    ├── InvalidRequestError    a client sent something we cannot answer
    │   ├── PromptTooLongError
    │   └── UnknownStrategyError
    ├── AuthenticationError    an admin endpoint without the right bearer token (401)
    ├── PermissionDeniedError  an admin endpoint while no admin token is configured (403)
    └── NoAnswerError          every head failed: nothing to vote on

The CLI converts these in one place (cli.py) and the server in one handler (server/errors.py).
"""

from __future__ import annotations


class CouncilError(Exception):
    """Base of every error Council raises on purpose."""

    status_code = 500
    error_type = "server_error"
    code: str | None = None
    param: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if param is not None:
            self.param = param
        if code is not None:
            self.code = code


class ConfigError(CouncilError):
    error_type = "configuration_error"


class ModelPrepareError(CouncilError):
    error_type = "model_prepare_error"


class ModelNotFoundError(CouncilError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"
    param = "model"


class InvalidRequestError(CouncilError):
    status_code = 400
    error_type = "invalid_request_error"


class PromptTooLongError(InvalidRequestError):
    status_code = 413
    code = "context_length_exceeded"
    param = "messages"


class UnknownStrategyError(InvalidRequestError):
    code = "unknown_strategy"
    param = "strategy"


class AuthenticationError(CouncilError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(CouncilError):
    status_code = 403
    error_type = "permission_error"
    code = "admin_disabled"


class NoAnswerError(CouncilError):
    status_code = 502
    error_type = "upstream_error"
    code = "all_heads_failed"
