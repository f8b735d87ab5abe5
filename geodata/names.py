"""Name material for the demo county: real town names of 巴林左旗, syllable lists for villages, gacha,
communities, streets and people (Han and Mongolian), and small vectorised name generators.

Examples
--------
>>> import numpy as np
>>> names = village_names(np.random.default_rng(1), 5, mongolian=np.array([False, True, False, True, False]))
>>> len(set(names)) == 5 and names[1].endswith("嘎查") and names[0].endswith("村")
True
>>> GROUP_NUMERALS[0], group_name(12)
('一', '十二组')
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from grids._validate import id_check_codes

# -- 巴林左旗 (150422): real town-level units with plausible seat positions (WGS84 lon, lat) -------------
# kind: 镇 / 乡 / 苏木 / 街道; code suffixes are the statistical codes (grids.towns.towns_of("150422"), which
# geodata.demo uses: 镇 1xx, 乡/苏木 2xx; the seat's 街道 are 类似乡级单位 4xx there).
REAL_TOWNS: tuple[tuple[str, str, str, float, float], ...] = (
    ("100", "林东镇", "镇", 119.39, 43.98),
    ("101", "隆昌镇", "镇", 119.58, 43.82),
    ("102", "十三敖包镇", "镇", 119.33, 43.80),
    ("103", "碧流台镇", "镇", 119.08, 43.95),
    ("104", "富河镇", "镇", 119.22, 44.28),
    ("105", "白音勿拉镇", "镇", 119.62, 44.08),
    ("106", "哈拉哈达镇", "镇", 119.62, 43.69),
    ("202", "三山乡", "乡", 119.16, 43.79),
    ("203", "花加拉嘎乡", "乡", 118.92, 44.28),
    ("200", "查干哈达苏木", "苏木", 119.50, 44.36),
    ("201", "乌兰达坝苏木", "苏木", 119.25, 44.60),
)
REAL_STREET_OFFICES: tuple[tuple[str, str], ...] = (("403", "林东西城街道"), ("404", "林东东城街道"))
REAL_SEAT = (119.39, 43.98)

# generic town names for other outlines (a seat town first)
GENERIC_TOWNS: tuple[str, ...] = (
    "城关镇", "兴隆镇", "新华镇", "太平镇", "永丰镇", "红旗镇", "富裕镇", "三合乡", "长胜乡", "东升镇",
    "五一镇", "胜利乡", "白塔镇", "双井乡", "大营子乡", "乌兰苏木", "巴彦苏木", "宝日乡", "广兴镇", "德胜镇",
    "金沟乡", "柳河镇", "平安乡", "团结镇", "万合永镇",
)
GENERIC_STREET_OFFICES: tuple[str, ...] = ("城西街道", "城东街道")

# -- villages and gacha -----------------------------------------------------------------------------------
_VILLAGE_PREFIX = ("", "", "", "前", "后", "东", "西", "南", "北", "大", "小", "上", "下", "新")
_VILLAGE_CORE = (
    "兴隆", "太平", "永丰", "富裕", "双井", "三合", "五家子", "红旗", "胜利", "前进", "新立", "长胜", "福山",
    "龙头山", "马架子", "杨家营子", "王家窝铺", "十家子", "兴隆地", "四方城", "二八地", "林家地", "白音沟",
    "大井", "榆树林", "柳条沟", "杏树洼", "山湾子", "石匠沟", "哈拉沟", "碾房", "东山", "敖包山", "吉祥",
    "朝阳", "民主", "团结", "和平", "永兴", "富河", "荞麦塔拉", "广德", "平顶山", "七家", "八家", "万宝",
    "三道营子", "张家店", "李家营子", "刘家沟", "孙家窝铺", "赵家湾", "西拉木伦", "常胜", "联合", "友好",
    "丰收", "兴安", "东胜", "复兴", "老房身", "南沟门", "北沟", "砬子沟", "乌兰板", "福兴", "宝山", "金厂沟",
)
_GACHA_FIRST = (
    "巴彦", "乌兰", "查干", "哈拉", "宝日", "额尔敦", "白音", "乌力吉", "阿拉坦", "呼和", "锡林", "巴音",
    "达尔罕", "乌日根", "敖力布", "浩尔", "希日", "诺门", "朝克图", "准", "宝力",
)
_GACHA_SECOND = (
    "塔拉", "宝力格", "温都尔", "哈达", "淖尔", "乌苏", "高勒", "诺尔", "敖包", "图", "花", "勿苏", "套海",
    "布拉格", "锡勒", "础鲁", "胡硕", "毛都", "杭盖", "呼都格",
)
COMMUNITY_NAMES: tuple[str, ...] = (
    "新城社区", "契丹社区", "上京社区", "昌泰社区", "富河社区", "团结社区", "和平社区", "龙泉社区", "西沙社区",
    "东升社区", "兴盛社区", "阳光社区", "滨河社区", "北城社区", "南塔社区", "辽都社区", "文化社区", "站前社区",
    "绿洲社区", "福泽社区",
)

GROUP_NUMERALS = ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十")


def group_name(n: int) -> str:
    """Chinese name of the ``n``-th villager group (1-based): ``一组`` … ``十组``, ``十一组`` …"""
    if n <= 10:
        return GROUP_NUMERALS[n - 1] + "组"
    tens, ones = divmod(n, 10)
    head = ("" if tens == 1 else GROUP_NUMERALS[tens - 1]) + "十"
    return head + (GROUP_NUMERALS[ones - 1] if ones else "") + "组"


def village_names(rng: np.random.Generator, n: int, *, mongolian: np.ndarray) -> list[str]:
    """``n`` distinct village names: ``…村`` (Han) or ``…嘎查`` (Mongolian, where ``mongolian`` is True)."""
    han = [p + c + "村" for p in _VILLAGE_PREFIX[3:] for c in _VILLAGE_CORE] + [c + "村" for c in _VILLAGE_CORE]
    gacha = [a + b + "嘎查" for a in _GACHA_FIRST for b in _GACHA_SECOND]
    han_order = rng.permutation(len(han))
    gacha_order = rng.permutation(len(gacha))
    # plain names ("兴隆村") are the most common: put them first more often
    plain = np.flatnonzero([not any(h.startswith(p) for p in _VILLAGE_PREFIX[3:]) for h in han])
    han_order = np.concatenate([rng.permutation(plain)[: len(plain) // 2], han_order])
    out: list[str] = []
    seen: set[str] = set()
    hi = gi = 0
    for is_mn in np.asarray(mongolian, dtype=bool)[:n]:
        while True:
            if is_mn:
                name = gacha[gacha_order[gi % len(gacha)]] if gi < len(gacha) else f"第{gi}嘎查"
                gi += 1
            else:
                name = han[han_order[hi]] if hi < len(han_order) else f"第{hi}村"
                hi += 1
            if name not in seen:
                break
        seen.add(name)
        out.append(name)
    return out


# -- streets ----------------------------------------------------------------------------------------------
MAIN_STREETS: tuple[str, ...] = (
    "契丹大街", "林东大街", "上京大街", "富河大街", "乌尔吉木伦大街", "辽上京路", "巴林大街", "昌福大街",
)
SECONDARY_STREETS: tuple[str, ...] = (
    "富河路", "召庙路", "兴隆路", "站前路", "新华路", "团结路", "和平路", "文化路", "民族路", "昌泰路",
    "龙泉路", "滨河路", "西沙路", "东升路", "北环路", "南环路", "建设路", "兴安路", "胜利路", "汇丰路",
)
BRANCH_STREET_STEMS: tuple[str, ...] = (
    "乌尔吉木伦", "辽都", "塔子", "白音", "阿鲁", "石房子", "南塔", "北塔", "祖州", "怀州", "永安", "福泽",
    "绿洲", "广德", "宝山", "营盘", "哈达", "敖包", "查干", "七家", "双井", "柳林", "杏林", "榆林", "松山",
    "金桥", "银河", "长青", "春晖", "晨光", "花园", "育才", "振兴", "兴业", "利民", "康宁",
)


def street_names(rng: np.random.Generator, first: tuple[str, ...] | list[str], suffix: str) -> Iterator[str]:
    """Endless distinct street names: ``first`` in random order, then ``<stem>一巷``, ``<stem>二巷`` … style."""
    yield from (str(x) for x in rng.permutation(list(first)))
    stems = [s.removesuffix("大街").removesuffix("路").removesuffix("街") for s in first]
    for num in [*GROUP_NUMERALS, *(f"{GROUP_NUMERALS[k]}十" for k in range(1, 9))]:
        for stem in rng.permutation(stems):
            yield f"{stem}{num}{'巷' if suffix == '巷' else '条' + suffix}"
    n = 0
    while True:
        n += 1
        yield f"无名{suffix}{n}"

# -- people -----------------------------------------------------------------------------------------------
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
SURNAME_WEIGHTS = np.linspace(3.0, 0.5, len(SURNAMES))
GIVEN_CHARS = (
    "国建华明志军海平德永春玉凤兰英秀丽文学俊杰勇刚强伟芳娟敏静磊鹏飞宏成福贵富财宝山林树桂荣庆祥瑞云"
    "红艳霞梅丹琴燕萍亮东辉斌超波宇鑫涛浩然佳欣雪晶利民生发胜全有义忠信福禄喜才广兴旺金银长"
)
MONGOLIAN_NAMES = (
    "巴特尔", "其木格", "额尔敦", "乌力吉", "斯琴", "那日苏", "宝音", "图雅", "朝鲁", "苏日娜", "包金山",
    "白音仓", "敖其尔", "哈斯", "乌云", "萨仁", "阿拉坦", "特木尔", "孟和", "巴图", "呼和", "格日勒",
    "达来", "吉日嘎拉", "满都拉", "乌兰", "娜仁花", "陶克陶", "朝格图", "布和", "额日和木", "宝力道",
    "包玉兰", "白金花", "吴其日格", "韩阿拉坦", "金宝", "乌日娜", "塔娜", "德力格尔",
)


def person_names(rng: np.random.Generator, n: int, *, mongolian_share: float | np.ndarray = 0.15) -> np.ndarray:
    """``n`` Chinese personal names: Han (surname + one or two given characters) or Mongolian.

    ``mongolian_share`` is the probability of a Mongolian name, one value or one per person.
    """
    p = SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum()
    sur = np.asarray(list(SURNAMES))[rng.choice(len(SURNAMES), n, p=p)]
    chars = np.asarray(list(GIVEN_CHARS))
    g1 = chars[rng.integers(0, len(chars), n)]
    g2 = chars[rng.integers(0, len(chars), n)]
    two = rng.random(n) < 0.7
    han = np.char.add(np.char.add(sur, g1), np.where(two, g2, ""))
    mn = np.asarray(MONGOLIAN_NAMES)[rng.integers(0, len(MONGOLIAN_NAMES), n)]
    is_mn = rng.random(n) < np.broadcast_to(np.asarray(mongolian_share, dtype=float), (n,))
    return np.where(is_mn, mn, han).astype(object)


_PHONE_PREFIXES = np.array([130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157,
                            158, 159, 177, 180, 182, 183, 185, 186, 187, 188, 189, 147, 153, 199])


def phone_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` 11-digit mainland mobile numbers (as strings)."""
    prefix = _PHONE_PREFIXES[rng.integers(0, len(_PHONE_PREFIXES), n)].astype(np.int64)
    rest = rng.integers(0, 100_000_000, n, dtype=np.int64)
    return np.char.mod("%011d", prefix * 100_000_000 + rest).astype(object)


def id_numbers(rng: np.random.Generator, n: int, *, region: str, female: np.ndarray | None = None,
               start_year: int = 1950, end_year: int = 2000) -> np.ndarray:
    """``n`` distinct 18-digit identity numbers (GB 11643 check digit) issued in ``region`` (6 digits)."""
    out = np.empty(n, dtype=object)
    todo = np.arange(n)
    seen: set[str] = set()
    female = rng.random(n) < 0.4 if female is None else np.asarray(female, dtype=bool)
    start = np.datetime64(f"{start_year}-01-01")
    span = int((np.datetime64(f"{end_year}-12-31") - start).astype(int))
    while todo.size:
        m = todo.size
        birth = (start + rng.integers(0, span, m).astype("timedelta64[D]")).astype(str)
        birth = np.char.replace(birth, "-", "")
        seq = rng.integers(0, 500, m) * 2 + np.where(female[todo], 0, 1)  # odd = male
        body = np.char.add(np.char.add(region, birth), np.char.mod("%03d", seq))
        digits = np.frombuffer("".join(body).encode("ascii"), dtype=np.uint8).reshape(m, 17)
        check = id_check_codes(digits).view("S1").astype(str)
        full = np.char.add(body, check)
        retry = []
        for i, v in zip(todo, full, strict=True):
            if v in seen:
                retry.append(i)
            else:
                seen.add(v)
                out[i] = str(v)
        todo = np.asarray(retry, dtype=int)
    return out
