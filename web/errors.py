"""Error pages: JSON with a message under /api, a Japanese page elsewhere."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest, HTTPException

from corpus.text import has_control_characters

MESSAGES = {
    400: "リクエストの内容が正しくありません。",
    401: "ログインまたはAPIトークンが必要です。",
    403: "この操作は許可されていません。",
    404: "ページが見つかりません。",
    405: "この方法ではアクセスできません。",
    413: "送信された内容が大きすぎます。",
    429: "送信が多すぎます。しばらく待ってから再度お試しください。",
}
# The page's heading: what happened, in words (never 「404 エラー」); the code
# is printed small below, for a telephone call to the office.
TITLES = {
    400: "送信された内容を受け付けられません",
    401: "ログインが必要です",
    403: "この操作はできません",
    404: "ページが見つかりません",
    405: "この方法ではアクセスできません",
    409: "すでに処理されています",
    410: "このリンクは使えなくなりました",
    413: "送信された内容が大きすぎます",
    429: "送信が多すぎます",
    500: "システムで問題が起きました",
}


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(code: int, message: str, error: str | None = None) -> Any:
    response = jsonify(error=error or _slug(code), message=message)
    response.status_code = code
    return response


def _slug(code: int) -> str:
    from werkzeug.http import HTTP_STATUS_CODES

    return HTTP_STATUS_CODES.get(code, "error").lower().replace(" ", "_")


def handle_http_error(exc: HTTPException) -> Any:
    code = exc.code or 500
    message = exc.description if isinstance(exc, ControlCharacters) else MESSAGES.get(
        code, exc.description or "エラーが発生しました。")
    if isinstance(exc, CSRFError):
        message = "フォームの有効期限が切れたか、不正な送信です。ページを再読み込みしてやり直してください。"
    if wants_json():
        response = json_error(code, message)
    else:
        response = render_template("error.html", code=code, title=TITLES.get(code), message=message), code
    if code == 405 and exc.get_response().headers.get("Allow"):
        allow = exc.get_response().headers["Allow"]
        if isinstance(response, tuple):
            return response[0], code, {"Allow": allow}
        response.headers["Allow"] = allow
    return response


class ControlCharacters(BadRequest):
    """A query string or path with a NUL or another control character: no page
    or database query can use it (PostgreSQL refuses NUL in any text)."""

    description = "使用できない文字（制御文字）が含まれています。アドレスを確かめてください。"


def refuse_control_characters() -> None:
    """Before every request: a control character in the path or the query string is a 400."""
    if has_control_characters(request.path) or any(
        has_control_characters(key) or has_control_characters(value)
        for key, values in request.args.lists() for value in values
    ):
        raise ControlCharacters()


def init_app(app: Flask) -> None:
    app.before_request(refuse_control_characters)
    app.register_error_handler(HTTPException, handle_http_error)
