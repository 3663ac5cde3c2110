"""The ledger's broker identity from its config (issue 15 items 1-3): client id = its broker user,
a plain subscription for one ledger, a secret group for several, a persistent session for
``ledger run`` only."""

from __future__ import annotations

import pytest

from common.settings import ConfigError
from ledger.config import parse_ledger_config
from ledger.service import LedgerService
from sync.client import MqttSettings


def _config(text: str = "") -> str:
    return '[ledger]\ndatabase = "/tmp/never-opened.db"\n' + text


def test_one_ledger_subscribes_plainly_and_several_share_a_secret_group() -> None:
    single = parse_ledger_config(_config())
    assert single.ledger.group is None
    assert LedgerService.records_filter(single) == "pesee/v1/stations/+/records"
    several = parse_ledger_config(_config('group = "0123456789abcdef"\n'))
    assert LedgerService.records_filter(several) == (
        "$share/0123456789abcdef/pesee/v1/stations/+/records"
    )


def test_a_guessable_group_is_a_config_error_that_says_why() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_ledger_config(_config('group = "ledger"\n'))
    assert "secret" in "\n".join(caught.value.problems)


def test_the_client_id_is_the_broker_user_and_only_run_keeps_a_session() -> None:
    config = parse_ledger_config(_config('[mqtt]\nusername = "ledger-2"\n'))
    assert config.client_identity == "ledger-2"
    assert config.mqtt_settings(config.client_identity, persistent=True).session_expiry == 7 * 86400
    # `ledger registry import` and other tools: a clean session, never the ledger's queue
    tool = config.mqtt_settings(client_id="")
    assert (tool.identity, tool.session_expiry) == ("ledger-2", 0)
    assert MqttSettings(client_id="", username=None).identity == ""
    explicit = parse_ledger_config(_config('[mqtt]\nusername = "ledger"\nclient_id = "x"\n'))
    assert explicit.client_identity == "x"
