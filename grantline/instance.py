"""An instance on disk: the data directory, its ``grantline.toml`` and its secret key.

The data directory is ``--data-dir``, else ``$GRANTLINE_DATA_DIR``, else ``./var`` in the
current directory (kept beside the checkout so a development instance is easy to find and wipe).
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grantline.ratelimit.config import rate_limits_from_config
from grantline.settings import AuthorizationDetailType, Settings

__all__ = ["Instance", "detail_types_from_config", "example_config", "resolve_data_dir"]

CONFIG_NAME = "grantline.toml"
SECRET_KEY_NAME = "secret.key"
DEV_CREDENTIALS_NAME = "dev-credentials.json"

_INT_OPTIONS = (
    "par_lifetime",
    "interaction_lifetime",
    "code_lifetime",
    "access_token_lifetime",
    "refresh_token_lifetime",
    "session_lifetime",
    "max_body_bytes",
    "max_query_bytes",
    "dpop_proof_window",
    "max_jwt_lifetime",
    "max_concurrent_requests",
    "admission_wait_ms",
    "audit_retention_days",
    "audit_checkpoint_interval",
)
_BOOL_OPTIONS = ("require_pushed_authorization_requests", "dev_mode", "dpop_nonce_required")
_STR_OPTIONS = ("access_token_signing_alg", "default_resource", "profile")
_EXAMPLE_CONFIG = Path(__file__).parent / "config" / "grantline.toml"


def example_config(*, issuer: str | None, dev_mode: bool) -> str:
    """The configuration ``grantline init`` writes, with the documented example types."""
    issuer_line = (
        f"issuer = {json.dumps(issuer)}" if issuer else '# issuer = "https://as.example.com"'
    )
    return (
        _EXAMPLE_CONFIG.read_text()
        .replace("@ISSUER_LINE@", issuer_line)
        .replace("@DEV_MODE@", "true" if dev_mode else "false")
    )


def detail_types_from_config(config: dict[str, Any]) -> dict[str, AuthorizationDetailType]:
    """``[authorization_details_types.NAME]`` tables: description, template, schema (JSON text
    or a TOML table)."""
    types: dict[str, AuthorizationDetailType] = {}
    for name, table in config.get("authorization_details_types", {}).items():
        schema = table.get("schema", {})
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                raise ValueError(f"authorization_details_types.{name}.schema: {exc}") from None
        types[str(name)] = AuthorizationDetailType(
            description=str(table.get("description", name)),
            schema=schema,
            template=str(table.get("template", "")),
            audit={str(k): str(v) for k, v in table.get("audit", {}).items()},
        )
    return types


def resolve_data_dir(option: str | None) -> Path:
    if option:
        return Path(option)
    env = os.environ.get("GRANTLINE_DATA_DIR")
    return Path(env) if env else Path("var")


@dataclass(frozen=True)
class Instance:
    data_dir: Path

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_NAME

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / SECRET_KEY_NAME

    @property
    def dev_credentials_path(self) -> Path:
        return self.data_dir / DEV_CREDENTIALS_NAME

    def exists(self) -> bool:
        return self.config_path.exists()

    def read_config(self) -> dict[str, Any]:
        try:
            with self.config_path.open("rb") as fh:
                return tomllib.load(fh)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no Grantline instance in {self.data_dir}: run `grantline init` first"
            ) from None

    def database_url(self) -> str:
        """The configured database URL, with a relative SQLite path resolved to the data dir."""
        url = os.environ.get("GRANTLINE_DATABASE_URL") or str(
            self.read_config().get("database_url", "sqlite:///grantline.db")
        )
        prefix = "sqlite:///"
        if url.startswith(prefix):
            path = Path(url[len(prefix) :])
            if not path.is_absolute():
                url = prefix + str((self.data_dir / path).resolve())
        return url

    def secret_key(self) -> bytes:
        env = os.environ.get("GRANTLINE_SECRET_KEY")
        if env:
            return bytes.fromhex(env)
        return bytes.fromhex(self.secret_key_path.read_text().strip())

    def settings(self, *, issuer: str | None = None) -> Settings:
        """Settings from the config file; ``issuer`` (the serve URL) applies when none is set."""
        config = self.read_config()
        options: dict[str, Any] = {}
        for name in _INT_OPTIONS:
            if name in config:
                options[name] = int(config[name])
        for name in _BOOL_OPTIONS:
            if name in config:
                options[name] = bool(config[name])
        for name in _STR_OPTIONS:
            if name in config:
                options[name] = str(config[name])
        if "trusted_proxies" in config:
            options["trusted_proxies"] = tuple(str(p) for p in config["trusted_proxies"])
        options["authorization_details_types"] = detail_types_from_config(config)
        options["rate_limits"] = rate_limits_from_config(config)
        if "scopes" in config:
            options["scopes"] = {str(k): str(v) for k, v in config["scopes"].items()}
        configured_issuer = os.environ.get("GRANTLINE_ISSUER") or config.get("issuer")
        return Settings(
            issuer=str(configured_issuer or issuer or "http://127.0.0.1:8000"),
            database_url=self.database_url(),
            secret_key=self.secret_key(),
            **options,
        )

    def write_initial_files(self, *, issuer: str | None, dev_mode: bool) -> list[str]:
        """Create the config file and secret key where missing; return what was created."""
        created: list[str] = []
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            self.config_path.write_text(example_config(issuer=issuer, dev_mode=dev_mode))
            created.append(str(self.config_path))
        if not self.secret_key_path.exists():
            fd = os.open(self.secret_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            created.append(str(self.secret_key_path))
        return created
