"""Accounts: users, roles and personal API tokens."""

from threadline.accounts.users import (
    ROLES,
    UserInfo,
    authenticate_token,
    count_users,
    create_token,
    create_user,
    get_user,
    verify_password,
)

__all__ = [
    "ROLES",
    "UserInfo",
    "authenticate_token",
    "count_users",
    "create_token",
    "create_user",
    "get_user",
    "verify_password",
]
