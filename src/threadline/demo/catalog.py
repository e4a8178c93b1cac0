"""What the demo shop sells and says, per locale: products, stores, campaigns, messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    category: str
    price: float


@dataclass(frozen=True, slots=True)
class Catalog:
    currency: str
    language: str
    site: str
    products: tuple[Product, ...]
    stores: tuple[tuple[str, str], ...]  # (store id, name); personas pick one by index
    campaigns: tuple[tuple[str, str], ...]  # (campaign id, e-mail subject)
    sms: tuple[str, ...]
    social: tuple[str, ...]
    chat_topics: tuple[str, ...]
    payments: tuple[str, ...]


_SKUS = (
    "TL-1001",
    "TL-1002",
    "TL-1003",
    "TL-2001",
    "TL-2002",
    "TL-2003",
    "TL-3001",
    "TL-3002",
    "TL-3003",
    "TL-4001",
    "TL-4002",
    "TL-4003",
)
_CATEGORIES = (
    "footwear",
    "footwear",
    "footwear",
    "apparel",
    "apparel",
    "apparel",
    "gear",
    "gear",
    "gear",
    "accessories",
    "accessories",
    "accessories",
)

CALL_REASONS = ("order_status", "return", "product_question", "billing", "delivery", "complaint", "loyalty")
APP_SCREENS = ("Home", "Search", "Product Detail", "Cart", "Order History", "Loyalty Card")
MOBILE_DEVICES = (
    ("Apple", "iPhone15,2", "ios", "iOS", "17.4"),
    ("Apple", "iPhone14,5", "ios", "iOS", "16.7"),
    ("samsung", "SM-S918B", "android", "Android", "14"),
    ("Xiaomi", "23049PCD8G", "android", "Android", "13"),
    ("HUAWEI", "NOH-AN00", "android", "HarmonyOS", "4.0"),
)


def _products(names: tuple[str, ...], prices: tuple[float, ...]) -> tuple[Product, ...]:
    return tuple(Product(*fields) for fields in zip(_SKUS, names, _CATEGORIES, prices, strict=True))


CATALOGS = {
    "en_US": Catalog(
        currency="USD",
        language="en-US",
        site="https://shop.threadline.example",
        products=_products(
            (
                "Trail Runner 2",
                "Ridge Hiking Boot",
                "City Sneaker",
                "Rain Shell Jacket",
                "Merino Base Layer",
                "Fleece Pullover",
                "Daypack 24L",
                "Trekking Poles",
                "Insulated Bottle",
                "Wool Beanie",
                "Hiking Socks (3 pack)",
                "Sun Hat",
            ),
            (129.0, 189.0, 95.0, 159.0, 79.0, 69.0, 89.0, 59.0, 29.0, 24.0, 21.0, 32.0),
        ),
        stores=(
            ("NYC-01", "New York Fifth Avenue"),
            ("SFO-01", "San Francisco Union Square"),
            ("CHI-01", "Chicago Magnificent Mile"),
            ("LAX-01", "Los Angeles The Grove"),
            ("SEA-01", "Seattle Pike Place"),
        ),
        campaigns=(
            ("spring-sale", "Spring Sale: 20% off trail gear"),
            ("new-arrivals", "Just landed: new rain shells"),
            ("loyalty-bonus", "Double points this weekend"),
            ("abandoned-cart", "You left something behind"),
            ("birthday", "Happy birthday! A gift inside"),
        ),
        sms=(
            "Your order has shipped! Track it in the app.",
            "Double points this weekend in store. Reply STOP to opt out.",
            "Your pickup is ready at the store.",
            "Flash sale: 30% off socks today only.",
        ),
        social=(
            "Do you have the Trail Runner 2 in size 10?",
            "Love my new boots!",
            "When does the sale end?",
            "My order hasn't arrived yet",
            "Is the rain shell really waterproof?",
        ),
        chat_topics=("sizing", "order_status", "returns", "product_question", "shipping"),
        payments=("card", "card", "apple_pay", "cash", "gift_card"),
    ),
    "zh_CN": Catalog(
        currency="CNY",
        language="zh-CN",
        site="https://shop.threadline.example/cn",
        products=_products(
            (
                "越野跑鞋 2代",
                "山脊徒步靴",
                "城市休闲鞋",
                "防水冲锋衣",
                "美利奴羊毛打底衫",
                "抓绒套头衫",
                "24升日行背包",
                "登山杖",
                "保温水杯",
                "羊毛针织帽",
                "徒步袜（三双装）",
                "防晒帽",
            ),
            (899.0, 1299.0, 599.0, 1099.0, 499.0, 459.0, 599.0, 399.0, 199.0, 159.0, 139.0, 219.0),
        ),
        stores=(
            ("SHA-01", "上海南京西路店"),
            ("PEK-01", "北京三里屯店"),
            ("CAN-01", "广州天河店"),
            ("SZX-01", "深圳万象城店"),
            ("CTU-01", "成都太古里店"),
        ),
        campaigns=(
            ("618", "618年中大促：全场8折"),
            ("new-arrivals", "新品上市：轻量冲锋衣"),
            ("double-11", "双11预售开启"),
            ("abandoned-cart", "您的购物车还有商品"),
            ("birthday", "生日快乐！专属礼券已到账"),
        ),
        sms=(
            "【Threadline】您的订单已发货，请在App中查看物流。",
            "【Threadline】本周末门店双倍积分，回T退订。",
            "【Threadline】您预约的商品已到店，可随时自提。",
            "【Threadline】限时特惠：袜子全场7折。",
        ),
        social=(
            "越野跑鞋有42码吗？",
            "新买的徒步靴很舒服！",
            "活动什么时候结束？",
            "我的订单还没到",
            "冲锋衣真的防水吗？",
        ),
        chat_topics=("sizing", "order_status", "returns", "product_question", "shipping"),
        payments=("wechat_pay", "wechat_pay", "alipay", "alipay", "card"),
    ),
}
