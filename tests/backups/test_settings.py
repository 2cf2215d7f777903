"""Backup settings are checked at start: a half-configured or malformed setup is refused with
the setting's name, not discovered at the first scheduled backup."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emporium.core.config import Settings

KEY = "age1vp9adad9dhntt5323e0ylpyddq3uza76ftatsqp9ak2ynrddspms96s0gl"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"backup_destinations": "file:///srv/backups"}, "EMPORIUM_BACKUP_RECIPIENTS"),
        ({"backup_recipients": KEY}, "EMPORIUM_BACKUP_DESTINATIONS"),
        (
            {"backup_recipients": KEY, "backup_destinations": "ftp://host/backups"},
            "is not file:/// or s3://",
        ),
        (
            {"backup_recipients": "ssh-ed25519 AAAA", "backup_destinations": "s3://bucket"},
            "age1",
        ),
    ],
)
def test_a_half_or_wrongly_configured_backup_is_refused(values: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings.model_validate(values)


def test_comma_lists_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPORIUM_BACKUP_RECIPIENTS", f"{KEY}, {KEY}")
    monkeypatch.setenv("EMPORIUM_BACKUP_DESTINATIONS", "file:///a,s3://b/p")
    settings = Settings()
    assert settings.backup_recipients == [KEY, KEY]
    assert settings.backup_destinations == ["file:///a", "s3://b/p"]
