"""Who an agent acts as: grants and scopes, secrets resolved at call time, keyed
fingerprints, and redaction of secrets from everything recorded."""

from agentlab.identity._approver_keys import (
    KEY_PREFIX,
    approver_public_key,
    new_approver_key,
    sign_decision,
    signature_valid,
)
from agentlab.identity._grants import (
    GrantFinding,
    ToolUse,
    choose_grant,
    issue_grant,
    lint_grants,
    revoke_grant,
)
from agentlab.identity._keys import fingerprint, key_path, keyed_hash, signing_key
from agentlab.identity._logs import ScrubbedLogFilter, scrubbed_logger
from agentlab.identity._redact import (
    DEFAULT_PATTERNS,
    MARKER_PREFIX,
    Redactor,
    SecretPattern,
    default_redactor,
)
from agentlab.identity._scopes import (
    ScopeSpec,
    is_broad,
    render_scope,
    scope_matches,
    validate_scope,
)
from agentlab.identity._secrets import SecretSource, describe_source, resolve_secret

__all__ = [
    "DEFAULT_PATTERNS",
    "KEY_PREFIX",
    "MARKER_PREFIX",
    "GrantFinding",
    "Redactor",
    "ScopeSpec",
    "ScrubbedLogFilter",
    "SecretPattern",
    "SecretSource",
    "ToolUse",
    "approver_public_key",
    "choose_grant",
    "default_redactor",
    "describe_source",
    "fingerprint",
    "is_broad",
    "issue_grant",
    "key_path",
    "keyed_hash",
    "lint_grants",
    "new_approver_key",
    "render_scope",
    "resolve_secret",
    "revoke_grant",
    "scope_matches",
    "scrubbed_logger",
    "sign_decision",
    "signature_valid",
    "signing_key",
    "validate_scope",
]
