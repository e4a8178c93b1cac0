"""How one person's name and address drift between two records: the raw material of fuzzy duplicates.

Also the pinyin of Chinese names, so that zh_CN customers get believable e-mail addresses and a twin
can be written in pinyin. The tables cover Faker's zh_CN given-name characters and the surnames the
demo draws (see personas.ZH_SURNAMES).
"""

from __future__ import annotations

import random
import re

_GIVEN_PINYIN = (
    "伟wei 强qiang 磊lei 洋yang 勇yong 军jun 杰jie 涛tao 超chao 明ming 刚gang 平ping 辉hui 鹏peng 华hua "
    "飞fei 鑫xin 波bo 斌bin 宇yu 浩hao 凯kai 健jian 俊jun 帆fan 帅shuai 旭xu 宁ning 龙long 林lin 欢huan "
    "佳jia 阳yang 建jian 亮liang 成cheng 峰feng 国guo 晨chen 瑞rui 志zhi 兵bing 雷lei 东dong 博bo 彬bin "
    "坤kun 想xiang 岩yan 杨yang 文wen 利li 楠nan 红hong 霞xia 芳fang 娜na 敏min 静jing 秀xiu 英ying 丽li "
    "艳yan 娟juan 兰lan 燕yan 玲ling 桂gui 丹dan 萍ping 玉yu 梅mei 莉li 珍zhen 婷ting 凤feng 晶jing 颖ying "
    "雪xue 慧hui 倩qian 琴qin 畅chang 云yun 洁jie 柳liu 淑shu 春chun 海hai 冬dong 荣rong 莹ying 琳lin "
    "欣xin 香xiang 芝zhi 小xiao 金jin 瑜yu 花hua 璐lu "
    # the homophones below, so that a mistyped name still gets an e-mail address
    "玮wei 婧jing 民min 君jun 鹃juan 永yong 方fang 钢gang 绣xiu 瑛ying 桦hua 灵ling 虹hong 岚lan 夏xia "
    "铭ming 韬tao 晖hui 雨yu 昊hao 亭ting 新xin 锋feng 菲fei 凡fan 菁jing 惠hui 茜qian 芸yun 隆long 恺kai "
    "靓liang 玫mei 祯zhen 纯chun"
)
_SURNAME_PINYIN = (
    "王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 吴wu 赵zhao 周zhou 徐xu 孙sun 马ma 朱zhu 胡hu 林lin "
    "郭guo 何he 高gao 罗luo 郑zheng 梁liang 谢xie 宋song 唐tang 许xu 邓deng 冯feng 韩han 曹cao 曾zeng "
    "彭peng 萧xiao 蔡cai 潘pan 田tian 董dong 袁yuan 于yu 余yu 叶ye 蒋jiang 杜du 苏su 魏wei 程cheng 吕lv "
    "丁ding 沈shen 任ren 姚yao 卢lu 傅fu 钟zhong 姜jiang 崔cui 谭tan 廖liao 范fan 汪wang 陆lu 金jin 石shi "
    "戴dai 贾jia 韦wei 夏xia 邱qiu 方fang 侯hou 邹zou 熊xiong 孟meng 秦qin 白bai 江jiang 阎yan 薛xue 尹yin "
    "段duan 雷lei 黎li 史shi 龙long 陶tao 贺he 顾gu 毛mao 郝hao 龚gong 邵shao 万wan 钱qian 严yan 赖lai "
    "覃qin 洪hong 武wu 莫mo 孔kong"
)


def _table(spec: str) -> dict[str, str]:
    return {item[0]: item[1:] for item in spec.split()}


GIVEN_PINYIN = _table(_GIVEN_PINYIN)
SURNAME_PINYIN = _table(_SURNAME_PINYIN)

# Characters a clerk types instead of the right one: same sound, different character.
_HOMOPHONES = _table(
    "伟玮 静婧 丽莉 莉丽 敏民 杰洁 洁杰 军君 磊雷 雷磊 娟鹃 勇永 艳燕 燕艳 芳方 刚钢 秀绣 英瑛 华桦 平萍 "
    "萍平 玲灵 红虹 兰岚 霞夏 明铭 涛韬 斌彬 彬斌 辉晖 宇雨 浩昊 洋阳 阳洋 琳林 林琳 婷亭 波博 博波 健建 "
    "建健 鑫新 峰锋 飞菲 帆凡 晶菁 颖莹 莹颖 慧惠 倩茜 云芸 欣新 龙隆 凯恺 亮靓 梅玫 珍祯 春纯"
)

NICKNAMES = {
    "William": "Bill", "Robert": "Bob", "Richard": "Rick", "James": "Jim", "John": "Jack", "Michael": "Mike",
    "Christopher": "Chris", "Matthew": "Matt", "Joseph": "Joe", "Daniel": "Dan", "Anthony": "Tony",
    "Thomas": "Tom", "Elizabeth": "Liz", "Jennifer": "Jen", "Katherine": "Kate", "Margaret": "Maggie",
    "Patricia": "Trish", "Susan": "Sue", "Deborah": "Deb", "Rebecca": "Becky", "Jessica": "Jess",
    "Samantha": "Sam", "Alexander": "Alex", "Benjamin": "Ben", "Nicholas": "Nick", "Jonathan": "Jon",
    "Timothy": "Tim", "Steven": "Steve", "Stephen": "Steve", "Andrew": "Andy", "Edward": "Ed",
    "Kenneth": "Ken", "Ronald": "Ron", "Donald": "Don", "Gregory": "Greg", "Jeffrey": "Jeff",
    "Joshua": "Josh", "David": "Dave", "Charles": "Charlie", "Victoria": "Vicky", "Christina": "Tina",
    "Kimberly": "Kim", "Amanda": "Mandy", "Cynthia": "Cindy", "Pamela": "Pam", "Barbara": "Barb",
    "Melissa": "Missy", "Stephanie": "Steph", "Theresa": "Terry", "Teresa": "Terry", "Zachary": "Zach",
    "Gabriel": "Gabe", "Samuel": "Sam", "Patrick": "Pat", "Raymond": "Ray", "Lawrence": "Larry",
    "Gerald": "Jerry", "Douglas": "Doug", "Peter": "Pete", "Jacob": "Jake", "Nathan": "Nate",
    "Abigail": "Abby", "Allison": "Ally", "Madison": "Maddie", "Catherine": "Cathy", "Angela": "Angie",
    "Jacqueline": "Jackie", "Natalie": "Nat", "Alexandra": "Lexi", "Sandra": "Sandy", "Frank": "Frankie",
    "Vincent": "Vince", "Phillip": "Phil", "Philip": "Phil", "Kathleen": "Kathy", "Christine": "Chris",
    "Nancy": "Nan", "Joanne": "Jo", "Cassandra": "Cassie", "Valerie": "Val", "Randall": "Randy",
}  # fmt: skip

_STREET_ABBREVIATIONS = {
    "Street": "St", "Avenue": "Ave", "Road": "Rd", "Drive": "Dr", "Lane": "Ln", "Court": "Ct",
    "Boulevard": "Blvd", "Place": "Pl", "Square": "Sq", "Terrace": "Ter", "Parkway": "Pkwy",
    "Highway": "Hwy", "Mountain": "Mtn", "Heights": "Hts", "Crossing": "Xing", "Point": "Pt",
    "Suite": "Ste", "Apt.": "#",
}  # fmt: skip


def pinyin(text: str, table: dict[str, str]) -> str | None:
    """Toneless pinyin of `text`, or None if a character is not in `table`."""
    parts = [table.get(char) for char in text]
    return None if None in parts else "".join(p for p in parts if p)


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word + word[-1]
    at = rng.randrange(1, len(word) - 2)
    if rng.random() < 0.5:
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]  # two letters swapped
    return word[:at] + word[at + 1 :]  # one letter dropped


def english_variant(first: str, last: str, rng: random.Random) -> tuple[str, str, str]:
    """(first, last, full name) as another clerk or form might have written them."""
    nickname = NICKNAMES.get(first)
    roll = rng.random()
    if nickname and roll < 0.6:
        return nickname, last, f"{nickname} {last}"
    if roll < 0.8:
        typo = _typo(last, rng)
        return first, typo, f"{first} {typo}"
    # Given and family name swapped by whoever keyed the record in.
    return last, first, f"{last} {first}"


def chinese_variant(surname: str, given: str, rng: random.Random) -> tuple[str, str, str]:
    """A homophone typed in place of one character, or the name written in pinyin."""
    swappable = [i for i, char in enumerate(given) if char in _HOMOPHONES]
    spelled_given = pinyin(given, GIVEN_PINYIN)
    spelled_surname = pinyin(surname, SURNAME_PINYIN)
    if swappable and (rng.random() < 0.5 or not (spelled_given and spelled_surname)):
        at = rng.choice(swappable)
        typed = given[:at] + _HOMOPHONES[given[at]] + given[at + 1 :]
        return typed, surname, f"{surname}{typed}"
    if spelled_given and spelled_surname:
        first, last = spelled_given.capitalize(), spelled_surname.capitalize()
        # Western order, as on a card filled in at a store abroad.
        return first, last, f"{first} {last}"
    return given, surname, f"{surname} {given}"


def street_variant(street: str, rng: random.Random) -> str:
    """The same street address written a little differently (abbreviated, unit dropped)."""
    words = street.split()
    abbreviated = [_STREET_ABBREVIATIONS.get(word, word) for word in words]
    if abbreviated != words and rng.random() < 0.7:
        return " ".join(abbreviated)
    unit = re.search(r"\s+(Apt\.|Suite)\s+\S+$", street)
    if unit:
        return street[: unit.start()]
    if re.search(r"[A-Za-z]座$", street):
        return street[:-2] + street[-2].upper() + "栋"
    return street
