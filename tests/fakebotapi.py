"""A small fake Telegram Bot API over real HTTP (aiohttp), with helpers for tests to drive it and look inside."""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

# Parameters that are strings on the wire and must stay so ("123456" is a text, not a number).
STRING_PARAMS = {
    "text", "caption", "callback_query_id", "url", "secret_token", "language_code", "action", "file_id",
    "description", "short_description", "name", "parse_mode", "data", "emoji", "inline_message_id",
}


@dataclass
class Call:
    """One request the bot made: the method, its decoded parameters, and what the fake answered."""

    method: str
    params: dict[str, Any]
    result: Any = None


@dataclass
class Failure:
    """An error a method answers with, `times` times (None: until cleared)."""

    error_code: int
    description: str
    times: int | None = None
    retry_after: int | None = None


@dataclass
class Upload:
    """A file the bot sent as multipart."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class StoredFile:
    file_id: str
    data: bytes
    file_path: str


@dataclass
class FakeBotApi:
    """The Bot API as far as frontdesk uses it: long polling, sending, buttons, menus, files."""

    token_prefix: int = 123
    calls: list[Call] = field(default_factory=list, repr=False)
    url: str = ""

    def __post_init__(self) -> None:
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._messages: dict[tuple[int, int], dict] = {}
        self._users: dict[int, dict] = {}
        self._files: dict[str, StoredFile] = {}
        self._failures: dict[str, Failure] = {}
        self._delays: dict[str, list] = {}  # method -> [seconds, times left or None]
        self._waiters: set[asyncio.Future] = set()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._query_ids = itertools.count(1)
        handlers = {
            "getMe": self._get_me, "getUpdates": self._get_updates, "deleteWebhook": self._true,
            "setWebhook": self._true, "getWebhookInfo": self._webhook_info, "sendMessage": self._send_message,
            "editMessageText": self._edit_text, "editMessageReplyMarkup": self._edit_markup,
            "answerCallbackQuery": self._true, "setMyCommands": self._true, "deleteMyCommands": self._true,
            "getMyCommands": self._empty_list, "sendChatAction": self._true, "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "deleteMessage": self._true, "getFile": self._get_file, "close": self._true, "logOut": self._true,
        }
        # Bot API method names are case-insensitive; calls are recorded under the documented spelling.
        self._methods: dict[str, tuple[str, Callable]] = {name.lower(): (name, h) for name, h in handlers.items()}

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Wake every waiting long poll, then close the server."""
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def bot_user(self) -> dict:
        return {"id": self.token_prefix, "is_bot": True, "first_name": "Desk", "username": "desk_test_bot",
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    # ---- what tests push -------------------------------------------------------------------

    def user(self, user_id: int, language_code: str = "en", first_name: str | None = None) -> dict:
        """The Telegram user object for `user_id` (remembered for the chat object)."""
        user = {"id": user_id, "is_bot": False, "first_name": first_name or f"User{user_id}",
                "last_name": "Test", "language_code": language_code}
        self._users[user_id] = user
        return user

    def message_update(self, user_id: int, text: str, language_code: str = "en", **extra) -> dict:
        """An update carrying a private message from `user_id`, not yet queued."""
        message = {"message_id": next(self._message_ids), "date": int(time.time()),
                   "chat": self._chat(user_id), "from": self.user(user_id, language_code), **extra}
        if text:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return {"update_id": next(self._update_ids), "message": message}

    def push_update(self, update: dict) -> dict:
        """Queue a raw update for the next getUpdates."""
        self._updates.append(update)
        self._notify()
        return update

    def push_message(self, user_id: int, text: str, language_code: str = "en") -> dict:
        """Queue a private text message (commands get their bot_command entity)."""
        return self.push_update(self.message_update(user_id, text, language_code))

    def push_document(self, user_id: int, file_name: str, data: bytes, mime_type: str = "text/csv",
                      caption: str = "", language_code: str = "en") -> dict:
        """Queue a private message with a document that getFile and the file URL then serve."""
        file_id = f"doc{next(self._file_ids)}"
        self._files[file_id] = StoredFile(file_id, data, f"documents/{file_id}_{file_name}")
        document = {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_name": file_name,
                    "mime_type": mime_type, "file_size": len(data)}
        extra = {"document": document, **({"caption": caption} if caption else {})}
        return self.push_update(self.message_update(user_id, "", language_code, **extra))

    def callback_update(self, user_id: int, data: str, message_id: int, language_code: str = "en") -> dict:
        """An update carrying a button press on the bot's message `message_id` in the chat with `user_id`,
        not yet queued."""
        message = self._messages.get((user_id, message_id)) or {
            "message_id": message_id, "date": int(time.time()), "chat": self._chat(user_id),
            "from": self.bot_user, "text": "…"}
        query = {"id": str(next(self._query_ids)), "from": self.user(user_id, language_code),
                 "chat_instance": f"ci{user_id}", "data": data, "message": message}
        return {"update_id": next(self._update_ids), "callback_query": query}

    def push_callback(self, user_id: int, data: str, message_id: int, language_code: str = "en") -> dict:
        """Queue a button press on the bot's message `message_id` in the chat with `user_id`."""
        return self.push_update(self.callback_update(user_id, data, message_id, language_code))

    def fail_method(self, method: str, error_code: int, description: str, *, times: int | None = None,
                    retry_after: int | None = None) -> None:
        """Make `method` answer with a Bot API error (`times` times, or until clear_failures)."""
        self._failures[method.lower()] = Failure(error_code, description, times, retry_after)

    def clear_failures(self) -> None:
        self._failures.clear()

    def slow_method(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Make `method` take `seconds` before it answers (`times` times, or always); the call is recorded
        as it comes in."""
        self._delays[method.lower()] = [seconds, times]

    # ---- what tests look at ----------------------------------------------------------------

    def calls_of(self, method: str, predicate: Callable[[Call], bool] | None = None) -> list[Call]:
        """Recorded calls of `method` (case-insensitive) that satisfy `predicate`."""
        return [c for c in self.calls
                if c.method.lower() == method.lower() and (predicate is None or predicate(c))]

    async def wait_for(self, method: str, predicate: Callable[[Call], bool] | None = None,
                       timeout: float = 5.0, count: int = 1) -> list[Call]:
        """Wait until at least `count` calls of `method` match; return all that match, oldest first."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = self.calls_of(method, predicate)
            if len(found) >= count:
                return found
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = ", ".join(f"{c.method}({c.params})" for c in self.calls[-10:])
                raise AssertionError(f"no {count} matching {method} call(s) within {timeout}s; last calls: {seen}")
            await self._next_change(remaining)

    def sent_texts(self, chat_id: int) -> list[str]:
        """Every text the bot sent (or edited to) in the chat, in order."""
        return [c.params["text"] for c in self.calls
                if c.method in ("sendMessage", "editMessageText") and c.params.get("chat_id") == chat_id]

    def message(self, chat_id: int, message_id: int) -> dict | None:
        """The stored message the bot sent, as the Bot API returned it."""
        return self._messages.get((chat_id, message_id))

    def _notify(self) -> None:
        """Wake everyone waiting for a change (a new call, a new update, closing)."""
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _next_change(self, timeout: float) -> None:
        """Wait for the next change; the future exists before any await, so no change slips through."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait([waiter], timeout=timeout)
        finally:
            self._waiters.discard(waiter)

    # ---- the HTTP side ---------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        name, handler = self._methods.get(method.lower(), (method, None))
        call = Call(name, params)
        self.calls.append(call)
        self._notify()
        await self._delay(method)
        failure = self._failure(method)
        if failure is not None:
            return self._error(failure.error_code, failure.description, failure.retry_after)
        if handler is None:
            return self._error(404, "Not Found: method not found")
        try:
            call.result = await handler(params)
        except LookupError as exc:
            return self._error(400, f"Bad Request: {exc.args[0]}")
        return web.json_response({"ok": True, "result": call.result})

    async def _download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        for stored in self._files.values():
            if stored.file_path == path:
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.Response(status=404, text="Not Found")

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        """Decode query, JSON, urlencoded or multipart parameters the way the Bot API reads them."""
        raw: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            raw.update(await request.json())
            return raw
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                raw[key] = Upload(value.filename, value.content_type, value.file.read())
            else:
                raw[key] = value
        return {key: _decode(key, value) for key, value in raw.items()}

    async def _delay(self, method: str) -> None:
        delay = self._delays.get(method.lower())
        if delay is None:
            return
        seconds, times = delay
        if times is not None:
            delay[1] = times - 1
            if delay[1] <= 0:
                del self._delays[method.lower()]
        await asyncio.sleep(seconds)

    def _failure(self, method: str) -> Failure | None:
        failure = self._failures.get(method.lower())
        if failure is None:
            return None
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[method.lower()]
        return failure

    @staticmethod
    def _error(code: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=code)

    def _chat(self, chat_id: int) -> dict:
        if chat_id < 0:
            return {"id": chat_id, "type": "group", "title": f"Group {chat_id}"}
        user = self._users.get(chat_id, {})
        return {"id": chat_id, "type": "private", "first_name": user.get("first_name", f"User{chat_id}")}

    def _store_message(self, chat_id: int, **content) -> dict:
        message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": self._chat(chat_id),
                   "from": self.bot_user, **{k: v for k, v in content.items() if v is not None}}
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _stored(self, params: dict) -> dict:
        key = (params.get("chat_id"), params.get("message_id"))
        if key not in self._messages:
            raise LookupError("message to edit not found")
        return self._messages[key]

    # ---- methods ---------------------------------------------------------------------------

    async def _true(self, params: dict) -> bool:
        return True

    async def _empty_list(self, params: dict) -> list:
        return []

    async def _get_me(self, params: dict) -> dict:
        return self.bot_user

    async def _webhook_info(self, params: dict) -> dict:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}

    async def _get_updates(self, params: dict) -> list[dict]:
        """Long polling: confirm updates below `offset`, then wait up to `timeout` seconds for new ones."""
        offset = int(params.get("offset") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = asyncio.get_running_loop().time() + float(params.get("timeout") or 0)
        while not self._updates and not self._closing:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            await self._next_change(remaining)
        return self._updates[: int(params.get("limit") or 100)]

    async def _send_message(self, params: dict) -> dict:
        if not params.get("text"):
            raise LookupError("message text is empty")
        if len(params["text"].encode("utf-16-le")) // 2 > 4096:
            raise LookupError("message is too long")
        return self._store_message(params["chat_id"], text=params["text"], reply_markup=params.get("reply_markup"))

    async def _edit_text(self, params: dict) -> dict:
        message = self._stored(params)
        message["text"] = params["text"]
        message["reply_markup"] = params.get("reply_markup")
        return {k: v for k, v in message.items() if v is not None}

    async def _edit_markup(self, params: dict) -> dict:
        message = self._stored(params)
        message["reply_markup"] = params.get("reply_markup")
        return {k: v for k, v in message.items() if v is not None}

    async def _send_document(self, params: dict) -> dict:
        upload = params.get("document")
        if not isinstance(upload, Upload):
            raise LookupError("document is missing")
        file_id = f"sent{next(self._file_ids)}"
        self._files[file_id] = StoredFile(file_id, upload.data, f"documents/{file_id}_{upload.filename}")
        document = {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_name": upload.filename,
                    "mime_type": upload.content_type, "file_size": len(upload.data)}
        return self._store_message(params["chat_id"], document=document, caption=params.get("caption"),
                                   reply_markup=params.get("reply_markup"))

    async def _send_photo(self, params: dict) -> dict:
        """A photo uploaded as multipart; refused as the Bot API does when it is no picture or too large."""
        upload = params.get("photo")
        if not isinstance(upload, Upload):
            raise LookupError("photo is missing")
        size = png_size(upload.data)
        if size is None:
            raise LookupError("IMAGE_PROCESS_FAILED")
        if sum(size) > 10_000 or max(size) > 20 * min(size):
            raise LookupError("PHOTO_INVALID_DIMENSIONS")
        caption = params.get("caption")
        if caption is not None and len(caption.encode("utf-16-le")) // 2 > 1024:
            raise LookupError("message caption is too long")
        file_id = f"photo{next(self._file_ids)}"
        self._files[file_id] = StoredFile(file_id, upload.data, f"photos/{file_id}.png")
        photo = [{"file_id": file_id, "file_unique_id": f"u{file_id}", "width": size[0], "height": size[1],
                  "file_size": len(upload.data)}]
        return self._store_message(params["chat_id"], photo=photo, caption=caption,
                                   reply_markup=params.get("reply_markup"))

    async def _get_file(self, params: dict) -> dict:
        stored = self._files.get(params.get("file_id", ""))
        if stored is None:
            raise LookupError("invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": f"u{stored.file_id}", "file_size": len(stored.data),
                "file_path": stored.file_path}


def png_size(data: bytes) -> tuple[int, int] | None:
    """A PNG's width and height, read from its header as Telegram's servers would; None for anything else."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _decode(key: str, value: Any) -> Any:
    """Bot API form values are JSON unless the parameter is a plain string (a text stays a text)."""
    if not isinstance(value, str) or key in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


@pytest.fixture
async def fake_bot_api():
    """A running fake Bot API; stopped after the test."""
    fake = FakeBotApi()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
