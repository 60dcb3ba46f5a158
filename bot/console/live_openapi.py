"""The live-stream sessions' part of the OpenAPI document (bot/console/openapi.py merges it)."""
from __future__ import annotations

from typing import Any

from bot.core.live import QuestionState

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NULLABLE_DATETIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
DATETIME: dict[str, Any] = {"type": "string", "format": "date-time"}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required if required is not None else list(properties)}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json("参数不对", _ref("Error")),
    "401": _json("没有令牌或令牌无效", _ref("Error")),
    "404": _json("不存在，或不在本账号的范围内", _ref("Error")),
}
SESSION_ID = {"name": "id", "in": "path", "required": True, "description": "直播编号", "schema": STR}
QUESTION_ID = {"name": "qid", "in": "path", "required": True, "description": "问题编号", "schema": STR}

LIVE_SESSION = _obj({
    "id": INT, "station": STR, "title": STR, "stream_url": STR, "starts_at": DATETIME, "ends_at": DATETIME,
    "deputy_codes": {"type": "array", "items": STR}, "keyword": STR, "qr_scene": STR,
    "status": {"type": "string", "enum": ["not_started", "running", "ended"]}, "ended_at": NULLABLE_DATETIME,
}, required=["id", "station", "title", "starts_at", "ends_at", "keyword", "qr_scene", "status"])
LIVE_QUESTION = _obj({
    "id": INT, "session_id": INT, "text": STR, "state": {"type": "string", "enum": [s.value for s in QuestionState]},
    "askers": INT, "starred": {"type": "boolean"}, "merged_into": {"type": ["integer", "null"]},
    "hide_reason": STR, "answer": STR, "answered_by": STR, "asked_at": STR, "photos": INT,
    "ticket_number": {"type": ["integer", "null"]},
}, required=["id", "text", "state", "askers"])
SUMMARY = _obj({k: INT for k in ("questions", "askers", "answered", "merged", "hidden", "starred", "tickets")})


def _action(summary: str, body: dict[str, Any] | None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": [SESSION_ID, QUESTION_ID],
                          "responses": {"200": _json("成功", _ref("LiveQuestion")),
                                        "409": _json("问题现在的状态不能这样操作（如已由别人回答）", _ref("Error")),
                                        **ERRORS}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _obj(body)}}}
    return {"post": op}


LIVE_PATHS: dict[str, Any] = {
    "/live-sessions": {
        "post": {"summary": "创建云直播接待", "requestBody": {"required": True, "content": {"application/json": {
            "schema": _obj({"station": STR, "title": STR, "stream_url": STR, "starts_at": DATETIME,
                            "ends_at": DATETIME, "deputy_codes": {"type": "array", "items": STR}, "keyword": STR},
                           required=["station", "title", "starts_at", "ends_at"])}}},
                 "responses": {"201": _json("已创建", _ref("LiveSession")), **ERRORS}},
        "get": {"summary": "云直播列表", "responses": {"200": _json("成功", _obj(
            {"items": {"type": "array", "items": _ref("LiveSession")}, "total": INT})), **ERRORS}},
    },
    "/live-sessions/{id}": {"get": {"summary": "一场直播及其统计", "parameters": [SESSION_ID], "responses": {
        "200": _json("成功", {"allOf": [_ref("LiveSession"), _obj({"summary": SUMMARY})]}), **ERRORS}}},
    "/live-sessions/{id}/questions": {"get": {
        "summary": "这场直播的全部问题（任何状态）", "parameters": [SESSION_ID],
        "responses": {"200": _json("成功", _obj({"items": {"type": "array", "items": _ref("LiveQuestion")},
                                                 "total": INT})), **ERRORS}}},
    "/live-sessions/{id}/questions/{qid}/answer": _action("回答（推送给所有提问人，含合并进来的）",
                                                          {"text": {"type": "string", "minLength": 1, "maxLength": 500}}),
    "/live-sessions/{id}/questions/{qid}/merge": _action("合并到另一个问题", {"into": INT}),
    "/live-sessions/{id}/questions/{qid}/hide": _action("隐藏（提问人会收到礼貌的说明）",
                                                        {"reason": {"type": "string", "minLength": 1, "maxLength": 100}}),
    "/live-sessions/{id}/questions/{qid}/star": _action("加星/取消加星（直播后转工单跟进）", None),
    "/live-sessions/{id}/questions/{qid}/show": _action("通过，显示", None),
    "/live-sessions/{id}/questions/{qid}/pin": _action("置顶为“正在回答”", None),
    "/live-sessions/{id}/end": {"post": {"summary": "结束直播：未回答和加星的问题转为工单", "parameters": [SESSION_ID],
                                         "responses": {"200": _json("已结束", {"allOf": [_ref("LiveSession"), _obj({"summary": SUMMARY})]}),
                                                       **ERRORS}}},
    "/live-sessions/{id}/stream": {"get": {
        "summary": "问题更新（text/event-stream：每个新问题或变化一条 question 事件，结束时 ended 事件）",
        "parameters": [SESSION_ID],
        "responses": {"200": {"description": "事件流", "content": {"text/event-stream": {"schema": STR}}}, **ERRORS}}},
}
LIVE_SCHEMAS = {"LiveSession": LIVE_SESSION, "LiveQuestion": LIVE_QUESTION}
