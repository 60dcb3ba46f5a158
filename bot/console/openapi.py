"""The OpenAPI 3 document of /api/v1/, built from small schema dicts (kept beside bot/console/api.py:
a test checks every route is described and every response matches its schema)."""
from __future__ import annotations

from typing import Any

from bot.core.tickets import CATEGORIES, TicketStatus
from bot.console.live_openapi import LIVE_PATHS, LIVE_SCHEMAS
from storage.console_queries import STAT_GROUPS, TABS

STR: dict[str, Any] = {"type": "string"}
NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}
INT: dict[str, Any] = {"type": "integer"}
DATETIME: dict[str, Any] = {"type": "string", "format": "date-time"}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _list_of(ref: str) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}, "total": INT})


TICKET = _obj({
    "service_request_id": STR,
    "status": {"type": "string", "enum": ["open", "closed"]},
    "status_detail": {"type": "string", "enum": [s.value for s in TicketStatus]},
    "service_code": STR,
    "service_name": STR,
    "description": STR,
    "address": STR,
    "requested_datetime": DATETIME,
    "agency_responsible": STR,
    "station_code": STR,
    "town": STR,
    "deputy_code": NULLABLE_STR,
    "deputy_name": NULLABLE_STR,
    "rating": {"type": ["integer", "null"], "minimum": 1, "maximum": 5},
})
NOTE = _obj({"id": INT, "service_request_id": STR, "author": STR, "text": STR, "created_datetime": DATETIME})
TICKET_DETAIL = {
    "allOf": [
        {"$ref": "#/components/schemas/Ticket"},
        _obj({
            "details": STR,
            "revision": INT,
            "updated_datetime": DATETIME,
            "phone": NULLABLE_STR,
            "media_urls": {"type": "array", "items": STR},
            "voice_text": {"type": "array", "items": STR},
            "rating_comment": STR,
            "timeline": {"type": "array", "items": _obj({"at": DATETIME, "kind": STR, "actor": STR, "text": STR})},
            "notes": {"type": "array", "items": {"$ref": "#/components/schemas/Note"}},
        }),
    ]
}
STATION = _obj({"code": STR, "name": STR, "kind": STR, "town": STR, "address": STR,
                "specialties": {"type": "array", "items": STR}, "places": {"type": "array", "items": STR}})
DEPUTY = _obj({"code": STR, "name": STR, "level": STR, "station_code": STR, "phone": STR, "bound": {"type": "boolean"}})
SHIFT = _obj({"station_code": STR, "station_name": STR, "deputy_code": STR, "deputy_name": STR,
              "start": STR, "end": STR})
STAT = _obj({"key": STR, "label": STR, "count": INT})
ERROR = _obj({"error": STR, "message": STR, "parameter": STR}, required=["error", "message"])


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema or STR}


TICKET_FILTERS = [
    _query("town", "镇（街道）名称"),
    _query("station", "联络站编号"),
    _query("status", "工单状态", {"type": "string", "enum": [s.value for s in TicketStatus]}),
    _query("category", "类别", {"type": "string", "enum": list(CATEGORIES)}),
    _query("since", "提交日期不早于（含）", {"type": "string", "format": "date"}),
    _query("until", "提交日期不晚于（含）", {"type": "string", "format": "date"}),
    _query("q", "工单号或关键词"),
    _query("tab", "队列：waiting 等待分配，assigned 办理中，late 超时未受理，resolved 已办结",
           {"type": "string", "enum": list(TABS)}),
    _query("rating", "评价星级，0 为未评价", {"type": "integer", "minimum": 0, "maximum": 5}),
    _query("deputy", "代表编号"),
]
PAGING = [
    _query("page", "页码，从 1 开始", {"type": "integer", "minimum": 1, "maximum": 10000}),
    _query("per_page", "每页条数", {"type": "integer", "minimum": 1, "maximum": 100}),
]
NUMBER = {"name": "number", "in": "path", "required": True, "description": "工单号", "schema": STR}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


ERRORS = {
    "400": _json_response("参数不对", _ref("Error")),
    "401": _json_response("没有令牌或令牌无效", _ref("Error")),
    "404": _json_response("不存在，或不在本账号的范围内", _ref("Error")),
}
VISITOR_REPORT = _obj({
    "summary": {"type": "string", "minLength": 1, "maxLength": 60, "description": "反映的问题（一句话）"},
    "details": {"type": "string", "maxLength": 2000, "description": "详细情况"},
    "place": {"type": "string", "minLength": 1, "maxLength": 200, "description": "地点"},
    "category": {"type": "string", "enum": list(CATEGORIES), "description": "诉求类别，不填为“其他”"},
    "phone": {"type": "string", "maxLength": 32, "description": "群众电话（手机或座机），可不填"},
    "phone_consent": {"type": "boolean", "description": "群众同意把电话告诉办理的代表"},
    "station": {"type": "string", "description": "联络站编号；不填则按地点分配（须在本账号范围内）"},
    "reception_id": {"type": "integer", "description": "在哪次接待活动登记的"},
}, required=["summary", "place"])
ASSIGN = _obj({
    "deputy_code": {"type": "string", "minLength": 1, "description": "代表编号：本站的代表；区级账号可选任何代表（工单随之转到该代表的联络站）"},
    "revision": {"type": "integer", "description": "读到的工单 revision；工单此后被改动过则返回 409"},
}, required=["deputy_code"])


def _post(summary: str, parameters: list[dict[str, Any]], body: dict[str, Any], status: str,
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"summary": summary, "parameters": parameters,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {status: _json_response("成功", _ref("TicketDetail")), **ERRORS, **(extra or {})}}


def _get(summary: str, parameters: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": parameters,
                    "responses": {"200": _json_response("成功", schema), **ERRORS}}}


def openapi_document() -> dict[str, Any]:
    ticket_page = _obj({"items": {"type": "array", "items": _ref("Ticket")}, "total": INT, "page": INT,
                        "per_page": INT})
    return {
        "openapi": "3.1.0",
        "info": {"title": "有诉求找代表直通车 数据接口", "version": "1.0.0",
                 "description": "供 12345 热线、数字人大平台等系统使用。令牌用 `zhitongche staff token 用户名` 生成，"
                                "权限与该账号相同；范围以外的数据一律按不存在（404）处理。"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/tickets": {**_get("工单列表", TICKET_FILTERS + PAGING, ticket_page),
                         "post": _post("代来访或来电群众登记诉求（按地点分配，和微信提交的一样办理；记入操作记录）", [],
                                       VISITOR_REPORT, "201")},
            "/tickets/{number}/assign": {"post": _post(
                "分配或改派给代表（代表和群众都会收到微信通知；记入操作记录）", [NUMBER], ASSIGN, "200",
                {"409": _json_response("工单刚被别人改动过，请重新读取后再操作", _ref("Error"))})},
            "/tickets/{number}": _get("一件工单", [NUMBER], _ref("TicketDetail")),
            "/tickets/{number}/notes": {"post": {
                "summary": "添加内部备注（不会发给群众，记入操作记录）",
                "parameters": [NUMBER],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _obj(
                    {"text": {"type": "string", "minLength": 1, "maxLength": 1000}})}}},
                "responses": {"201": _json_response("已添加", _ref("Note")), **ERRORS},
            }},
            "/stations": _get("联络站列表", [_query("town", "镇（街道）名称"), _query("q", "编号、名称或地址")],
                              _list_of("Station")),
            "/deputies": _get("代表列表", [_query("station", "联络站编号"), _query("q", "姓名、编号或电话")],
                              _list_of("Deputy")),
            "/duty": _get("现在值班的代表", [_query("station", "联络站编号")],
                          _obj({"at": DATETIME, "items": {"type": "array", "items": _ref("Shift")}, "total": INT})),
            "/stats/tickets": _get(
                "工单统计",
                [{**_query("by", "统计方式", {"type": "string", "enum": list(STAT_GROUPS)}), "required": True},
                 *TICKET_FILTERS],
                _obj({"by": STR, "items": {"type": "array", "items": _ref("Stat")}, "total": INT})),
            **LIVE_PATHS,
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Ticket": TICKET, "TicketDetail": TICKET_DETAIL, "Note": NOTE, "Station": STATION,
                        "Deputy": DEPUTY, "Shift": SHIFT, "Stat": STAT, "Error": ERROR, **LIVE_SCHEMAS},
        },
    }
