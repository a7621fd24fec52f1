"""Council's error tree. Every message says what to do about it.

    CouncilError
    ├── ConfigError              a setting is wrong or missing (names the setting)
    ├── ModelNotFoundError       a model/head id nobody serves
    ├── ModelPrepareError        the default weights are missing or cannot be converted
    ├── InvalidRequestError      a client sent something we cannot answer
    │   ├── PromptTooLongError
    │   ├── UnknownStrategyError
    │   ├── MemoryOffError       a conversation endpoint while memory is off
    │   └── ResponseSchemaError  a response_format schema that cannot be decoded (names why)
    ├── AuthenticationError      an admin endpoint without the right bearer token (401)
    ├── PermissionDeniedError    an admin endpoint while no admin token is configured (403)
    ├── NoAnswerError            every head failed: nothing to vote on
    │   ├── HeadsTimedOutError   every head timed out: busy, retry after `retry_after` s (503)
    │   ├── AbstainedError       every head was a tool head that does not apply (422)
    │   └── NoValidAnswerError   no answer validated against the requested schema (422)
    ├── RateLimitError           a key over its requests per minute or daily budget (429)
    ├── OverloadedError          a model's queue is full: retry after `retry_after` s (503)
    │
    │   memory:
    ├── ExchangeNotFoundError    an exchange id the store does not have (404)
    ├── ConversationNotFoundError  a conversation id the store does not have (404)
    ├── FactNotFoundError        a fact id the caller has not got (404)
    ├── DocumentError            a file that cannot be ingested (names the file)
    ├── SchemaTooNewError        the database was written by a newer Council
    ├── IndexCorrupt             lives in memory/index_files.py: a saved FAISS index that cannot
    │                            be trusted; memory/indexed.py rebuilds it from the store
    │
    │   learning:
    ├── BootstrapError           a bootstrap dataset that cannot be read
    ├── DatasetError             a dataset that cannot be frozen or loaded
    ├── TrainingError            a training that cannot start
    ├── GauntletError            a gauntlet that cannot be run fairly
    ├── FinetuneError            a hosted fine-tune that cannot be submitted (no key, refused)
    ├── StepFailed               a step of the nightly cycle failed (the champion is untouched)
    │
    │   adapters and jobs:
    ├── AdapterError             an adapter change the registry refuses
    │   └── AdapterNotFoundError
    ├── RunNotFoundError         a run id with no record (404)
    ├── LockHeld                 lives in jobs/lock.py: another cycle holds the leader lock
    ├── LockUnavailable          lives in jobs/lock.py: the lock's backend cannot be used
    ├── LockLost                 lives in jobs/lock.py: a Redis lease expired while held
    ├── SharedStateUnavailable   replicas' shared state (COUNCIL_REDIS_URL) cannot be written (503)
    │
    │   users:
    ├── UserExistsError          `users add` for a name that has a live key (409)
    └── UserNotFoundError        `users revoke` for a name with no live key (404)

The lock errors stay beside the lock: their messages are built from its holder records.
IndexCorrupt stays beside the index: it never reaches a user (the index is rebuilt).
tests/test_errors.py checks that every CouncilError subclass in the package is named here.

The CLI converts these in one place (cli.py) and the server in one handler (server/errors.py).
"""

from __future__ import annotations

from pathlib import Path


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


class MemoryOffError(InvalidRequestError):
    code = "memory_disabled"


# memory ---------------------------------------------------------------------------------------
class ExchangeNotFoundError(CouncilError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "exchange_not_found"
    param = "exchange_id"


class ConversationNotFoundError(CouncilError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "conversation_not_found"
    param = "conversation_id"


class FactNotFoundError(CouncilError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "fact_not_found"
    param = "id"


class DocumentError(CouncilError):
    """A file that cannot be ingested; the message names it and says what to do."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "unreadable_document"

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}")
        self.path = path


class SchemaTooNewError(CouncilError):
    error_type = "storage_error"


# learning -------------------------------------------------------------------------------------
class BootstrapError(CouncilError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "bootstrap_error"


class DatasetError(CouncilError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "dataset_error"


class TrainingError(CouncilError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "training_error"


class GauntletError(CouncilError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "gauntlet_error"


class FinetuneError(CouncilError):
    status_code = 502
    error_type = "upstream_error"
    code = "finetune_error"


class StepFailed(CouncilError):
    code = "cycle_step_failed"


# adapters and jobs ----------------------------------------------------------------------------
class AdapterError(CouncilError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "adapter_error"


class AdapterNotFoundError(AdapterError):
    status_code = 404
    code = "adapter_not_found"


class RunNotFoundError(CouncilError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "run_not_found"


# limits per key -------------------------------------------------------------------------------
class RateLimitError(CouncilError):
    """A key over one of its limits; `retry_after` (seconds) becomes the Retry-After header."""

    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int, limit: str, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.limit = limit


# users ----------------------------------------------------------------------------------------
class UserExistsError(CouncilError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "user_exists"
    param = "name"


class UserNotFoundError(CouncilError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "user_not_found"
    param = "name"


# admission ------------------------------------------------------------------------------------
class OverloadedError(CouncilError):
    """A loaded model's queue is full; the server adds Retry-After from `retry_after`."""

    status_code = 503
    error_type = "overloaded_error"
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class HeadsTimedOutError(NoAnswerError):
    """Every head that did not abstain ran past its `timeout_s`: the heads are busy (a queue that
    admitted the request but could not serve it in time), so the client should come back."""

    status_code = 503
    error_type = "overloaded_error"
    code = "heads_timed_out"

    def __init__(self, message: str, *, retry_after: float = 5.0):
        super().__init__(message)
        self.retry_after = retry_after


# tool heads -----------------------------------------------------------------------------------
class AbstainedError(NoAnswerError):
    """Every head on the ballot abstained (tool heads whose tool does not apply): the question
    is one this council has no head for, not an upstream failure. A NoAnswerError still, so
    escalation asks the next provider."""

    status_code = 422
    error_type = "invalid_request_error"
    code = "no_head_applies"


# structured output ----------------------------------------------------------------------------
class ResponseSchemaError(InvalidRequestError):
    """A response_format JSON schema that is invalid or uses a keyword the grammar lacks."""

    code = "invalid_schema"
    param = "response_format"

    def __init__(self, why: str):
        super().__init__(
            f"response_format: {why}. Fix the schema or drop that keyword "
            '(or ask with {"type": "json_object"} for any JSON object).'
        )


class NoValidAnswerError(NoAnswerError):
    """Heads answered, but no answer parsed and validated against the requested schema.
    A NoAnswerError still, so escalation asks the next provider."""

    status_code = 422
    error_type = "invalid_request_error"
    code = "no_valid_answer"


# replicas -------------------------------------------------------------------------------------
class SharedStateUnavailable(CouncilError):
    """Redis (COUNCIL_REDIS_URL) refused a change that every replica must see."""

    status_code = 503
    error_type = "service_unavailable"
    code = "shared_state_unavailable"
