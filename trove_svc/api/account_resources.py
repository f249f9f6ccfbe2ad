"""Responders for databases, users and root of an instance (sync calls to its guest)."""

from __future__ import annotations

import falcon

from trove_svc.api import schemas
from trove_svc.api.middleware import caller_of
from trove_svc.api.openapi import answers, paged
from trove_svc.api.paging import page
from trove_svc.api.validation import validate
from trove_svc.domain.accounts import AccountService


class _Resource:
    def __init__(self, accounts: AccountService) -> None:
        self._accounts = accounts


class Databases(_Resource):
    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        rows = self._accounts.list_databases(caller_of(req, project_id), instance_id)
        resp.media = page(req, "databases", rows, key="name")

    @answers(falcon.HTTP_202)
    @validate(schemas.DATABASES_CREATE)
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        body = req.get_media()
        self._accounts.create_databases(caller_of(req, project_id), instance_id, body["databases"])


class Database(_Resource):
    @answers(falcon.HTTP_202)
    def on_delete(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        instance_id: str,
        name: str,
    ) -> None:
        self._accounts.delete_database(caller_of(req, project_id), instance_id, name)


class Users(_Resource):
    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        rows = self._accounts.list_users(caller_of(req, project_id), instance_id)
        resp.media = page(req, "users", rows, key="name")

    @answers(falcon.HTTP_202)
    @validate(schemas.USERS_CREATE)
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        self._accounts.create_users(
            caller_of(req, project_id), instance_id, req.get_media()["users"]
        )

    @answers(falcon.HTTP_202)
    @validate(schemas.USERS_CHANGE_PASSWORDS)
    def on_put(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        self._accounts.change_passwords(
            caller_of(req, project_id), instance_id, req.get_media()["users"]
        )


class User(_Resource):
    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        instance_id: str,
        user: str,
    ) -> None:
        resp.media = {
            "user": self._accounts.get_user(caller_of(req, project_id), instance_id, user)
        }

    @answers(falcon.HTTP_202)
    @validate(schemas.USER_UPDATE)
    def on_put(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        instance_id: str,
        user: str,
    ) -> None:
        self._accounts.update_user(
            caller_of(req, project_id), instance_id, user, req.get_media()["user"]
        )

    @answers(falcon.HTTP_202)
    def on_delete(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        instance_id: str,
        user: str,
    ) -> None:
        self._accounts.delete_user(caller_of(req, project_id), instance_id, user)


class UserAccess(_Resource):
    @paged
    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        instance_id: str,
        user: str,
    ) -> None:
        rows = self._accounts.list_access(caller_of(req, project_id), instance_id, user)
        resp.media = page(req, "databases", rows, key="name")

    @answers(falcon.HTTP_202)
    @validate(schemas.USER_GRANT)
    def on_put(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        instance_id: str,
        user: str,
    ) -> None:
        databases = [d["name"] for d in req.get_media()["databases"]]
        self._accounts.grant_access(caller_of(req, project_id), instance_id, user, databases)


class UserAccessItem(_Resource):
    @answers(falcon.HTTP_202)
    def on_delete(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        instance_id: str,
        user: str,
        database: str,
    ) -> None:
        self._accounts.revoke_access(caller_of(req, project_id), instance_id, user, database)


class Root(_Resource):
    @validate(schemas.ROOT_ENABLE)
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        body = req.get_media(default_when_empty=None) or {}
        user = self._accounts.enable_root(
            caller_of(req, project_id), instance_id, body.get("password")
        )
        resp.media = {"user": user}

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        enabled = self._accounts.is_root_enabled(caller_of(req, project_id), instance_id)
        resp.media = {"rootEnabled": enabled}

    @answers(falcon.HTTP_204)
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        self._accounts.disable_root(caller_of(req, project_id), instance_id)
