"""`kefu explain` over HTTP: staff tools get explanations with the API secret, nobody else does."""

from __future__ import annotations

import json
import uuid

from tests.channels.conftest import API_TOKEN
from tests.channels.test_http import http, post_json
from tests.conftest import RasaServer


def test_explanations_need_the_api_secret(web_bot: RasaServer) -> None:
    assert post_json(web_bot, "/webhooks/explain/message", {"message": "where is my parcel?"})[0] == 401
    assert post_json(web_bot, "/webhooks/explain/message?token=wrong", {"message": "where is my parcel?"})[0] == 401
    assert http(web_bot, "/webhooks/explain/conversations/someone/turns/1")[0] == 401


def test_a_message_and_a_stored_turn_explained(web_bot: RasaServer) -> None:
    status, explanation = post_json(web_bot, f"/webhooks/explain/message?token={API_TOKEN}",
                                    {"message": "do you offer gift wrapping?"})
    assert status == 200, explanation
    assert explanation["intent"]["predicted"]["intent"] == "gift_wrapping"
    assert explanation["answer"] == "generated" and explanation["generated"]["sent"]
    assert sum(score["won"] for score in explanation["policies"]) == 1

    sender = f"explain-api-{uuid.uuid4().hex}"
    web_bot.say(sender, "我要取消订单")
    status, body = http(web_bot, f"/webhooks/explain/conversations/{sender}/turns/1?token={API_TOKEN}")
    assert status == 200
    turn = json.loads(body)
    assert turn["conversation_id"] == sender and turn["intent"]["intent"] == "cancel_order"
    assert turn["recorded"] and "utter_cancel_order" in turn["recorded"][0]
    status, page = http(web_bot, f"/webhooks/explain/conversations/{sender}/turns/1?token={API_TOKEN}&format=html")
    assert status == 200 and "取消" in page.decode() and b"https://" not in page
    assert http(web_bot, f"/webhooks/explain/conversations/{sender}/turns/5?token={API_TOKEN}")[0] == 404
