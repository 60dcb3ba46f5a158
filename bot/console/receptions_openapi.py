"""The OpenAPI part of the reception and broadcast endpoints (bot/console/receptions_api.py),
merged into bot/console/openapi.py's document."""
from __future__ import annotations

from typing import Any


def reception_schemas() -> dict[str, Any]:
    from bot.console.openapi import INT, STR, _obj, _ref

    counts = {"type": "object", "additionalProperties": {"type": "integer"},
              "description": "mass_tag / mass_openids / subscribe（订阅通知）/ customer_service：各渠道人数；"
                             "unreachable_*：发不到的人数（按原因），unreachable：发不到的总人数；"
                             "remaining_budget：本月还能群发几次"}
    per_channel = {"type": "object", "additionalProperties": _obj({"sent": INT, "pending": INT, "failed": INT})}
    new_reception = _obj({
        "station": {**STR, "description": "联络站编号"},
        "deputy_codes": {"type": "array", "items": STR, "minItems": 1, "description": "接待代表编号"},
        "date": {"type": "string", "format": "date", "description": "日期 YYYY-MM-DD"},
        "start": {**STR, "pattern": "^\\d{1,2}:\\d{2}$", "description": "开始时间 HH:MM（本地时间）"},
        "end": {**STR, "pattern": "^\\d{1,2}:\\d{2}$", "description": "结束时间 HH:MM"},
        "topic": STR, "place": STR, "live_url": STR, "capacity": {"type": "integer", "minimum": 1},
    }, required=["station", "deputy_codes", "date", "start", "end", "topic", "place"])
    return {
        "Reception": _obj({
            "id": INT, "station": STR, "station_name": STR, "town": STR,
            "deputy_codes": {"type": "array", "items": STR}, "deputy_names": {"type": "array", "items": STR},
            "date": {"type": "string", "format": "date"}, "start": STR, "end": STR, "topic": STR, "place": STR,
            "live_url": STR, "capacity": {"type": ["integer", "null"]},
            "status": {"type": "string", "enum": ["scheduled", "cancelled"]},
            "record": {"oneOf": [{"type": "null"}, _obj({
                "deputies_present": {"type": "array", "items": STR}, "visitors": INT, "notes": STR,
                "tickets": {"type": "array", "items": INT, "description": "群众反映的问题登记成的工单编号"}})],
                "description": "接待后登记的情况（还没登记：null）"},
        }),
        "NewReception": new_reception,
        "EditReception": {"type": "object", "description": "只写要改的字段；改了日期、时间、地点或代表，已通知过的人会收到一条变动通知",
                          "properties": new_reception["properties"]},
        "ReceptionRecord": _obj({
            "present": {"type": "array", "items": STR, "minItems": 1, "description": "到场的代表编号"},
            "visitors": {"type": "integer", "minimum": 0, "description": "来访群众人数"},
            "notes": {**STR, "description": "接待小结（可不填）"},
            "issues": {"type": "array", "description": "群众反映的问题，每条由工作人员代为登记成一件工单",
                       "items": _obj({
                           "summary": {**STR, "description": "反映了什么（一句话）"},
                           "details": {**STR, "description": "详细情况"},
                           "place": {**STR, "description": "发生在哪里（不填就是接待地点）"},
                           "category": {**STR, "description": "类别（不填为“其他”）"},
                           "phone": {**STR, "description": "群众的电话"},
                           "phone_consent": {"type": "boolean", "description": "群众同意代表看到电话"}},
                           required=["summary"])},
        }, required=["present", "visitors"]),
        "Invalid": _obj({"error": STR, "message": STR,
                         "errors": {"type": "array", "items": _obj({"field": STR, "message": STR})}},
                        required=["error", "message"]),
        "NewBroadcast": {"type": "object", "properties": {
            "station": {**STR, "description": "联络站编号（与 town 二选一）"},
            "town": {**STR, "description": "镇（街道）名称（与 station 二选一）"},
            "text": {**STR, "description": "通知内容（与 reception_id 二选一）"},
            "reception_id": {**INT, "description": "发这场接待的通知"},
            "dry_run": {"type": "boolean", "description": "true：只看发送计划，不发"}}},
        "BroadcastPlan": _obj({"id": {"type": ["integer", "null"]}, "dry_run": {"type": "boolean"}, "plan": counts}),
        "Broadcast": _obj({
            "id": INT, "audience_kind": {"type": "string", "enum": ["station", "town"]}, "audience": STR,
            "text": STR, "reception_id": {"type": ["integer", "null"]},
            "created_by": {**STR, "description": "发送的工作人员账号"},
            "created_at": {"type": "string", "format": "date-time"},
            "state": {"type": "string", "enum": ["sending", "done", "failed"]},
            "plan": counts, "progress": per_channel,
            "failures": {"type": "array", "items": _obj({
                "seq": INT, "channel": {"type": "string", "enum": ["mass_tag", "mass_openids", "subscribe"]},
                "people": INT, "error": {**STR, "description": "微信或本系统记下的原始错误"},
                "reason": {**STR, "description": "失败原因（中文）"}, "attempts": INT})},
        }),
        "Retried": {"allOf": [_ref("Broadcast"), _obj({"retried": INT})]},
    }


def reception_paths() -> dict[str, Any]:
    from bot.console.openapi import ERRORS, INT, _get, _json_response, _list_of, _query, _ref

    reception_id = {"name": "id", "in": "path", "required": True, "description": "接待编号", "schema": INT}
    broadcast_id = {**reception_id, "description": "群发编号"}
    invalid = {"400": _json_response("内容不对（errors 逐项说明哪个字段）", _ref("Invalid"))}

    def post(summary: str, parameters: list[Any], body: str | None, ok: str, schema: str,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
        operation: dict[str, Any] = {"summary": summary, "parameters": parameters,
                                     "responses": {ok: _json_response("成功", _ref(schema)), **ERRORS, **invalid,
                                                   **(extra or {})}}
        if body:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
        return {"post": operation}

    listing = _get("接待安排", [_query("station", "联络站编号"), _query("town", "镇（街道）名称"),
                                _query("from", "日期不早于（含），默认今天", {"type": "string", "format": "date"}),
                                _query("to", "日期不晚于（含）", {"type": "string", "format": "date"})],
                   _list_of("Reception"))
    create = post("安排一场接待", [], "NewReception", "201", "Reception")
    edit = post("修改接待安排（已通知过的人会收到变动通知）", [reception_id], "EditReception", "200", "Reception",
                {"409": _json_response("已取消的接待不能修改", _ref("Invalid"))})
    refused = {"409": _json_response("发不出去（没人订阅、本月群发次数已用完等）", _ref("Invalid"))}
    broadcast = post("群发通知（dry_run 只返回发送计划）", [], "NewBroadcast", "201", "BroadcastPlan", refused)
    broadcast["post"]["responses"]["200"] = _json_response("只看计划（dry_run）", _ref("BroadcastPlan"))
    return {
        "/receptions": {**listing, **create},
        "/receptions/{id}": {**_get("一场接待（含接待后登记的情况）", [reception_id], _ref("Reception")),
                             "patch": edit["post"]},
        "/receptions/{id}/cancel": post("取消接待（已收到提醒或通知的人会收到取消通知）", [reception_id], None, "200",
                                        "Reception"),
        "/receptions/{id}/record": post("登记接待情况：到场代表、来访人数、群众反映的问题（每条登记成一件工单）",
                                        [reception_id], "ReceptionRecord", "200", "Reception"),
        "/broadcasts": broadcast,
        "/broadcasts/{id}": _get("群发的进度和各渠道结果", [broadcast_id], _ref("Broadcast")),
        "/broadcasts/{id}/retry": post("重试失败的发送", [broadcast_id], None, "200", "Retried"),
    }
