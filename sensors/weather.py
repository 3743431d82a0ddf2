"""A deterministic model of Qinghe District's weather and soils (Tieling, Liaoning, ~42.3°N, 123.8°E).

Why a model instead of random numbers: dashboards and alerts are only worth demonstrating on data
that behaves like a field — cold dry winters (January mean about −12 °C), a summer monsoon that
brings most rain in July and August, soil that wets with a storm and dries over days, sunlight that
follows the sun, batteries that sag at night. Everything is a pure function of (seed, place, time):
smooth value noise and hashed rain events give random access, and the only state (soil water, snow)
is integrated hour by hour from a fixed anchor (1 December of each season), so the same seed always
gives the same reading at the same time no matter what was asked before.

Neighbours are alike: a village's traits mix a township component with its own, and rain falls on a
township as a whole (district-wide fronts, township-sized summer showers) with a small village factor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

LAT_DEG = 42.3
LON_DEG = 123.84
TZ_HOURS = 8  # Asia/Shanghai: China keeps no daylight saving time
YEAR_DAYS = 365.2425
MONTH_DAYS = YEAR_DAYS / 12
HOUR_MS = 3_600_000
SEASON_START_DOY = 334  # 1 December: soil water and snow are integrated from here, frozen and dry
SEGMENT_H = 24 * 30

# Monthly climate of Tieling (Jan..Dec), interpolated between mid-months.
PRECIP_MM = (6, 9, 16, 35, 58, 95, 175, 150, 62, 38, 18, 9)  # about 670 mm a year, mostly Jul-Aug
RAIN_DAYS = (3, 3, 5, 7, 9, 11, 14, 12, 8, 6, 5, 4)  # days with a frontal event
SHOWER_P = (0, 0, 0, 0, 0.04, 0.12, 0.2, 0.16, 0.05, 0, 0, 0)  # township-sized afternoon showers
DEWPOINT_DEPRESSION = (5, 5.5, 7, 10, 9, 6, 3.5, 3.5, 5, 6.5, 6, 5)  # °C below the daily mean
PET_MM_DAY = (0.2, 0.4, 1.0, 2.6, 4.0, 4.6, 4.8, 4.2, 3.0, 1.8, 0.7, 0.3)  # potential evapotranspiration
WIND_MS = (2.8, 3.1, 3.8, 4.5, 3.9, 2.9, 2.5, 2.3, 2.6, 3.1, 3.3, 2.9)
CLOUD = (0.3, 0.3, 0.35, 0.4, 0.45, 0.55, 0.65, 0.6, 0.4, 0.35, 0.35, 0.3)

_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread integer hash (random access to noise)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def uniform(*keys: int) -> float:
    """A uniform number in [0, 1) for a tuple of integer keys."""
    h = 0x1234567
    for k in keys:
        h = _mix(h ^ (k & _M64))
    return h / 18446744073709551616.0


def uniform2(a: int, b: int) -> float:
    """``uniform(a, b)`` without the loop: the hot path of the noise lattice."""
    return _mix(_mix(0x1234567 ^ (a & _M64)) ^ (b & _M64)) / 18446744073709551616.0


def key_of(text: str) -> int:
    """A stable integer key for a code or id (Python's str hash is salted per process)."""
    h = 1469598103934665603
    for b in text.encode():
        h = ((h ^ b) * 1099511628211) & _M64
    return h


def noise(key: int, x: float) -> float:
    """Smooth value noise in [-1, 1] with unit correlation length in x."""
    i = math.floor(x)
    f = x - i
    s = f * f * (3 - 2 * f)
    a = uniform2(key, i) * 2 - 1
    b = uniform2(key, i + 1) * 2 - 1
    return a + (b - a) * s


class Lattice:
    """``noise`` with its lattice values memoised: hashing dominated the cost of a sample."""

    def __init__(self) -> None:
        self._values: dict[tuple[int, int], float] = {}

    def __call__(self, key: int, x: float) -> float:
        i = math.floor(x)
        f = x - i
        s = f * f * (3 - 2 * f)
        values = self._values
        a = values.get((key, i))
        if a is None:
            a = values[(key, i)] = uniform2(key, i) * 2 - 1
        b = values.get((key, i + 1))
        if b is None:
            b = values[(key, i + 1)] = uniform2(key, i + 1) * 2 - 1
        return a + (b - a) * s


def monthly(table: tuple[float, ...], doy: float) -> float:
    """A monthly climate value at a day of the year, linear between mid-months."""
    x = doy / MONTH_DAYS - 0.5
    i = math.floor(x)
    f = x - i
    return table[i % 12] + (table[(i + 1) % 12] - table[i % 12]) * f


def local_days(ms: float) -> float:
    """Local days since 1970-01-01 00:00 local time."""
    return ms / 86_400_000 + TZ_HOURS / 24


def day_of_year(ms: float) -> float:
    """0 at local 1 January 00:00; the 365.2425-day period absorbs leap years well enough."""
    return local_days(ms) % YEAR_DAYS


def solar_hour(ms: float) -> float:
    """Local apparent solar time in hours (the district lies 3.84° east of Beijing's meridian)."""
    return (ms / HOUR_MS + LON_DEG / 15) % 24


def sun_sin_elevation(ms: float) -> float:
    doy = day_of_year(ms)
    decl = math.radians(23.44) * math.sin(2 * math.pi * (doy + 1 + 284) / 365)
    lat = math.radians(LAT_DEG)
    hour_angle = math.radians(15 * (solar_hour(ms) - 12))
    return math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(hour_angle)


def day_length_h(ms: float) -> float:
    doy = day_of_year(ms)
    decl = math.radians(23.44) * math.sin(2 * math.pi * (doy + 1 + 284) / 365)
    c = -math.tan(math.radians(LAT_DEG)) * math.tan(decl)
    return 2 * math.degrees(math.acos(max(-1.0, min(1.0, c)))) / 15


def diurnal_shape(h: float) -> float:
    """-1 at 05:00 solar, +1 at 14:30: warming is quicker than the night's cooling."""
    if 5 <= h < 14.5:
        return -math.cos(math.pi * (h - 5) / 9.5)
    hh = h if h >= 14.5 else h + 24
    return math.cos(math.pi * (hh - 14.5) / 14.5)


def seasonal_air_temp(doy: float) -> float:
    """Daily mean: about −12 °C in mid-January, 24 °C in mid-July."""
    return 6.0 - 18.0 * math.cos(2 * math.pi * (doy - 18) / YEAR_DAYS)


@dataclass(frozen=True)
class Traits:
    """What makes a village itself: microclimate, soil texture and chemistry, exposure."""

    code: str
    key: int
    township_key: int
    temp_offset: float  # °C
    rain_factor: float
    field_capacity: float  # % vol
    saturation: float
    wilting: float
    depth_mm: float  # root-zone depth the rain has to wet
    ec_base: float  # dS/m
    ph_base: float
    wind_factor: float

    @classmethod
    def of(cls, code: str, soil: tuple[float, float] | None = None) -> Traits:
        """Half township, half village: neighbouring villages resemble each other. ``soil``: the
        village's (field capacity, wilting point) in % vol from config/soils.toml; without it a
        loam-like soil of its own."""
        tk, vk = key_of(code[:9]), key_of(code)

        def mixed(salt: int) -> float:  # in [-1, 1]
            return 0.6 * (uniform(tk, salt) * 2 - 1) + 0.4 * (uniform(vk, salt) * 2 - 1)

        fc, wilting = soil if soil is not None else (33 + 5 * mixed(1), (33 + 5 * mixed(1)) * 0.42)
        return cls(
            code=code,
            key=vk,
            township_key=tk,
            temp_offset=0.6 * mixed(2),
            rain_factor=1 + 0.08 * mixed(3),
            field_capacity=fc,
            saturation=fc * (1.27 + 0.06 * mixed(4)),  # pores above field capacity drain in a day or two
            wilting=wilting,
            depth_mm=250 + 50 * mixed(5),
            ec_base=0.5 + 0.35 * mixed(6),
            ph_base=6.5 + 0.8 * mixed(7),
            wind_factor=1 + 0.2 * mixed(8),
        )


@dataclass
class _Block:
    """One season (from 1 December) of a village's hourly water balance."""

    start_h: int  # absolute UTC hour of index 0
    rain: list[float]  # liquid precipitation per hour, mm
    snow: list[float]  # solid precipitation per hour, mm water equivalent
    theta: list[float]  # soil water, % vol, at the start of each hour
    snowpack: float = 0.0


Event = tuple[float, float, float]  # start hour (absolute UTC), end hour, rate mm/h


class Climate:
    """District weather for one seed; ``sample`` answers a village's readings at a time."""

    def __init__(self, seed: int, soils: Callable[[str], tuple[float, float]] | None = None) -> None:
        self.seed = seed
        self._soils = soils  # village code → (field capacity, wilting point), % vol
        base = _mix(seed ^ 0x5EED)
        # One independent noise stream per phenomenon.
        (self._k_warm, self._k_fast, self._k_town, self._k_cloud, self._k_rain, self._k_rainf,
         self._k_dew, self._k_wet, self._k_wind, self._k_ec, self._k_ph) = (_mix(base ^ i) for i in range(1, 12))
        self._noise = Lattice()
        self._blocks: dict[tuple[str, int], _Block] = {}
        self._traits: dict[str, Traits] = {}
        self._event_cache: dict[tuple[int, int], tuple[Event, ...]] = {}
        self._district_cache: dict[int, tuple[list[float], list[float], list[float]]] = {}
        self._skies: dict[int, Sky] = {}
        self._cells: dict[int, tuple[float, float]] = {}

    def traits(self, village: str) -> Traits:
        t = self._traits.get(village)
        if t is None:
            t = self._traits[village] = Traits.of(village, self._soils(village) if self._soils else None)
        return t

    # -- air -----------------------------------------------------------------------------------------
    def anomaly(self, ms: float, township_key: int = 0) -> float:
        """Synoptic departure from the seasonal mean: cold waves and warm spells of a few days."""
        d = local_days(ms)
        a = 3.2 * self._noise(self._k_warm, d / 4) + 1.5 * self._noise(self._k_fast, d / 1.3)
        if township_key:
            a += 0.4 * self._noise(self._k_town ^ township_key, d / 2)
        return a

    @staticmethod
    def daily_range(doy: float) -> float:
        return 10 + 2 * math.cos(2 * math.pi * (doy - 110) / YEAR_DAYS)

    def air_temp(self, ms: float, village: str, wet: bool = False) -> float:
        tr = self.traits(village)
        doy = day_of_year(ms)
        dtr = self.daily_range(doy) * (0.4 if wet else 1.0)
        t = seasonal_air_temp(doy) + self.anomaly(ms, tr.township_key) + tr.temp_offset
        return t + dtr / 2 * diurnal_shape(solar_hour(ms)) - (2.0 if wet else 0.0)

    def cloudiness(self, ms: float) -> float:
        c = monthly(CLOUD, day_of_year(ms)) + 0.45 * self._noise(self._k_cloud, local_days(ms) / 0.8)
        return min(1.0, max(0.0, c))

    # -- rain ----------------------------------------------------------------------------------------
    def _events(self, cell: int, day: int, showers: bool) -> tuple[Event, ...]:
        """Rain events starting on local day ``day``: cell 0 is the district's frontal weather, a
        township key its summer afternoon showers."""
        cached = self._event_cache.get((cell, day))
        if cached is None:
            cached = self._event_cache[(cell, day)] = self._new_events(cell, day, showers)
        return cached

    def _new_events(self, cell: int, day: int, showers: bool) -> tuple[Event, ...]:
        doy = (day + 0.5) % YEAR_DAYS
        k = _mix(self._k_rain ^ _mix(cell ^ _mix(day & _M64)))
        if showers:
            if uniform(k, 1) >= monthly(SHOWER_P, doy):
                return ()
            start = 13 + 6 * uniform(k, 2)
            dur = 0.5 + 2.5 * uniform(k, 3)
            amount = -8 * math.log(1 - uniform(k, 4) * 0.999)
        else:
            days = monthly(RAIN_DAYS, doy)
            if uniform(k, 1) >= days / 30:
                return ()
            mean = 0.7 * monthly(PRECIP_MM, doy) / max(1.0, days)
            start = 24 * uniform(k, 2)
            dur = min(14.0, 1 - 4 * math.log(1 - uniform(k, 3) * 0.999))
            amount = -mean * math.log(1 - uniform(k, 4) * 0.995)
        h0 = day * 24 - TZ_HOURS + start
        return ((h0, h0 + dur, amount / dur),)

    def _township_rain(self, township_key: int, h0: int, n: int) -> list[float]:
        """Hourly precipitation (mm) on a township for absolute hours [h0, h0 + n)."""
        out = [0.0] * n
        first_day = math.floor((h0 + TZ_HOURS) / 24) - 1
        last_day = math.floor((h0 + n + TZ_HOURS) / 24)
        for day in range(first_day, last_day + 1):
            front = 0.7 + 0.6 * uniform(self._k_rainf, township_key, day)  # fronts are patchy
            for cell, showers, factor in ((0, False, front), (township_key, True, 1.0)):
                for start, end, rate in self._events(cell, day, showers):
                    i = max(h0, math.floor(start))
                    while i < end and i < h0 + n:
                        overlap = min(end, i + 1) - max(start, i)
                        if overlap > 0:
                            out[i - h0] += overlap * rate * factor
                        i += 1
        return out

    # -- soil water ---------------------------------------------------------------------------------
    def _block(self, village: str, hour: int) -> tuple[_Block, int]:
        """The season block that holds ``hour``, integrated at least one hour past it; and the index."""
        k = math.floor(((hour + TZ_HOURS) / 24 - SEASON_START_DOY) / YEAR_DAYS)
        block = self._blocks.get((village, k))
        if block is None:
            start_h = math.floor((k * YEAR_DAYS + SEASON_START_DOY) * 24 - TZ_HOURS)
            block = _Block(start_h, [], [], [self.traits(village).field_capacity * 0.7])
            self._blocks[(village, k)] = block
        i = hour - block.start_h
        while i + 1 >= len(block.theta):
            self._integrate(village, block)
        return block, i

    def _district_hours(self, h0: int) -> tuple[list[float], list[float], list[float]]:
        """Air temperature, 10 cm soil temperature and hourly potential evapotranspiration (mm) of
        the district for one segment of hours from ``h0``: shared by every village's water balance."""
        cached = self._district_cache.get(h0)
        if cached is None:
            air, soil, pet = [], [], []
            for h in range(h0, h0 + SEGMENT_H):
                ms = (h + 0.5) * HOUR_MS
                doy = day_of_year(ms)
                sh = solar_hour(ms)
                air.append(seasonal_air_temp(doy) + self.anomaly(ms) + self.daily_range(doy) / 2 * diurnal_shape(sh))
                soil.append(self.soil_temp(ms, ""))
                sun = max(0.0, math.cos(2 * math.pi * (sh - 12.5) / 24))
                pet.append(monthly(PET_MM_DAY, doy) * sun * math.pi / 24)
            cached = self._district_cache[h0] = (air, soil, pet)
        return cached

    def _integrate(self, village: str, block: _Block) -> None:
        """Advance a block's water balance by one segment: rain and snowmelt in, drainage and
        evapotranspiration out; frozen soil lets little in and nothing evaporates."""
        tr = self.traits(village)
        h0 = block.start_h + len(block.rain)
        precip = self._township_rain(tr.township_key, h0, SEGMENT_H)
        air, soil, pet = self._district_hours(h0)
        theta = block.theta[-1]
        snowpack = block.snowpack
        drain = 1 - math.exp(-1 / 18)
        et_scale = 100 / tr.depth_mm
        beta_span = max(1.0, 0.75 * tr.field_capacity - tr.wilting)
        day_factor = 1.0
        for i, p in enumerate(precip):
            h = h0 + i
            if i == 0 or (h + TZ_HOURS) % 24 == 0:
                day_factor = tr.rain_factor * (0.9 + 0.2 * uniform2(tr.key, (h + TZ_HOURS) // 24))
            p *= day_factor
            t_air = air[i] + tr.temp_offset
            frozen = soil[i] + 0.7 * tr.temp_offset < -0.5
            if t_air < 0:
                block.rain.append(0.0)
                block.snow.append(p)
                snowpack += p
                water = 0.0
            else:
                block.rain.append(p)
                block.snow.append(0.0)
                melt = min(snowpack, 0.12 * t_air)
                snowpack -= melt
                water = p + melt
            if frozen:
                water *= 0.2
            theta = min(theta + water * et_scale, tr.saturation)
            if theta > tr.field_capacity:
                theta -= (theta - tr.field_capacity) * drain
            if not frozen and pet[i] > 0:
                beta = min(1.0, max(0.0, (theta - tr.wilting) / beta_span))
                theta -= pet[i] * beta * (0.2 if p > 0.1 else 1.0) * et_scale
            theta = max(theta, tr.wilting * 0.6)
            block.theta.append(theta)
        block.snowpack = snowpack

    def rain_between(self, village: str, start_ms: float, end_ms: float) -> float:
        """Liquid precipitation (mm) a gauge catches in [start, end): snow does not tip a bucket."""
        total = 0.0
        h = math.floor(start_ms / HOUR_MS)
        last = math.ceil(end_ms / HOUR_MS) - 1
        while h <= last:
            block, _ = self._block(village, min(last, h + SEGMENT_H))  # integrated far enough
            i0 = h - block.start_h
            if i0 < 0:  # the interval began in the previous season
                block, i0 = self._block(village, h)
            rain = block.rain
            stop = min(last, block.start_h + len(rain) - 1)
            for hh in range(h, stop + 1):
                r = rain[hh - block.start_h]
                if r:
                    lo = max(start_ms, hh * HOUR_MS)
                    hi = min(end_ms, (hh + 1) * HOUR_MS)
                    total += r * (hi - lo) / HOUR_MS
            h = stop + 1
        return total

    def soil_water(self, village: str, ms: float) -> tuple[float, bool]:
        """Soil water (% vol) at ``ms`` and whether rain or snow falls in that hour."""
        h = ms / HOUR_MS
        hi = math.floor(h)
        block, i = self._block(village, hi)
        theta = block.theta[i] + (block.theta[i + 1] - block.theta[i]) * (h - hi)
        return theta, block.rain[i] + block.snow[i] > 0.2

    # -- soil ----------------------------------------------------------------------------------------
    def soil_temp(self, ms: float, village: str) -> float:
        """10 cm soil: the air's seasons damped and two weeks late, its days damped and three hours late."""
        doy = day_of_year(ms)
        season = 7.5 - 14.0 * math.cos(2 * math.pi * (doy - 30) / YEAR_DAYS)
        t = season + 0.45 * self.anomaly(ms - 86_400_000)
        if village:
            t += self.traits(village).temp_offset * 0.7
        amp = self.daily_range(doy) / 2 * 0.35 * (1.0 if t > 0 else 0.3)
        return t + amp * diurnal_shape((solar_hour(ms) - 3) % 24)

    # -- one sample ------------------------------------------------------------------------------------
    def sky(self, ms: int) -> Sky:
        """The district-wide part of a sample, shared by every village at the same instant."""
        sky = self._skies.get(ms)
        if sky is None:
            if len(self._skies) > 4096:
                self._skies.clear()
            d = local_days(ms)
            doy = d % YEAR_DAYS
            sh = solar_hour(ms)
            dtr = self.daily_range(doy)
            soil_season = 7.5 - 14.0 * math.cos(2 * math.pi * (doy - 30) / YEAR_DAYS)
            sun = max(0.0, math.cos(2 * math.pi * (sh - 14) / 24))
            sky = self._skies[ms] = Sky(
                days=d,
                doy=doy,
                solar_hour=sh,
                air_mean=seasonal_air_temp(doy) + self.anomaly(ms),
                half_range=dtr / 2,
                diurnal=diurnal_shape(sh),
                soil_mean=soil_season + 0.45 * self.anomaly(ms - 86_400_000),
                soil_half_range=dtr / 2 * 0.35,
                soil_diurnal=diurnal_shape((sh - 3) % 24),
                dew_depression=monthly(DEWPOINT_DEPRESSION, doy) - 1.5 * self._noise(self._k_dew, d / 1.5),
                sun=sun_sin_elevation(ms),
                cloud=self.cloudiness(ms),
                wind=monthly(WIND_MS, doy) * (0.7 + 0.6 * sun) * (1 + 0.45 * self._noise(self._k_wind, d * 3)),
                fertiliser=0.3 * math.exp(-(((doy - 135) / 18) ** 2)),
                day_length=day_length_h(ms),
            )
        return sky

    def sample(self, village: str, ms: int, interval_ms: int) -> dict[str, float]:
        """Every metric a station in ``village`` could measure at ``ms`` (rain over the interval)."""
        tr = self.traits(village)
        sky = self.sky(ms)
        d = sky.days
        theta, wet = self.soil_water(village, ms)
        t_mean = sky.air_mean + 0.4 * self._noise(self._k_town ^ tr.township_key, d / 2) + tr.temp_offset
        # Rain: cooler, and a small daily range under the clouds.
        t_air = t_mean + (0.4 * sky.half_range * sky.diurnal - 2.0 if wet else sky.half_range * sky.diurnal)
        t_soil = sky.soil_mean + 0.7 * tr.temp_offset
        t_soil += sky.soil_half_range * (1.0 if t_soil > 0 else 0.3) * sky.soil_diurnal

        # Frozen soil: ice has a lower permittivity, so the probe reads only the liquid part.
        liquid = 1.0 if t_soil >= 0 else max(0.35, 1 + t_soil / 3)
        # Relative humidity from a dewpoint below the day's mean temperature (Magnus formula).
        if wet:
            rh = 93 + 6 * uniform2(self._k_wet ^ tr.key, ms)
        else:
            dew = t_mean - sky.dew_depression
            rh = 100 * math.exp(17.625 * dew / (243.04 + dew) - 17.625 * t_air / (243.04 + t_air))
        # Light: clear-sky illuminance from the sun's elevation, dimmed by cloud and rain.
        cloud = 0.95 if wet else sky.cloud
        light = 0.0 if sky.sun <= 0 else 128_000 * sky.sun**1.15 * (1 - 0.75 * cloud)
        # Wind: windy spring, afternoon maximum, gusts with fronts.
        wind = sky.wind * tr.wind_factor * (1.4 if wet else 1.0)
        # Soil chemistry: slow village baselines; fertiliser after sowing raises EC for weeks.
        ec = tr.ec_base * (0.6 + 0.4 * theta / tr.field_capacity) + sky.fertiliser
        ec += 0.05 * self._noise(self._k_ec ^ tr.key, d / 10)
        ph = tr.ph_base + 0.08 * self._noise(self._k_ph ^ tr.key, d / 20)
        return {
            "air_temp": t_air,
            "air_humidity": min(100.0, max(5.0, rh)),
            "soil_temp": t_soil,
            "soil_moisture": min(100.0, max(0.5, theta * liquid)),
            "rainfall": self.rain_between(village, ms - interval_ms, ms),
            "light": min(200_000.0, light),
            "wind_speed": min(40.0, max(0.0, wind)),
            "soil_ec": min(5.0, max(0.02, ec)),
            "soil_ph": min(9.5, max(4.0, ph)),
        }

    # -- power ----------------------------------------------------------------------------------------
    def battery(self, device_key: int, ms: int, air_temp: float, failing: bool) -> float:
        """A solar-charged Li-ion cell: charged by day, sagging through the night.

        A failing cell has lost most of its capacity: it sags fast and drops below 3.4 V before dawn.
        """
        sky = self.sky(ms)
        cell = self._cells.get(device_key)
        if cell is None:  # each cell's own full voltage and rate of sag
            cell = self._cells[device_key] = (4.1 + 0.05 * uniform2(device_key, 1), 1 + 0.2 * uniform2(device_key, 2))
        full = cell[0]
        rate = (0.075 if failing else 0.018) * cell[1]
        ramp = 5.0 if failing else 2.5
        sunrise = 12 - sky.day_length / 2
        sunset = 12 + sky.day_length / 2
        h = sky.solar_hour
        if sunrise <= h < sunset:
            dawn_v = full - rate * (24 - sky.day_length)
            charge = min(1.0, (h - sunrise) / ramp) * (1 - 0.5 * sky.cloud)
            v = dawn_v + (full - dawn_v) * charge
        else:
            v = full - rate * ((h - sunset) % 24)
        v -= 0.004 * max(0.0, -air_temp)  # cold cells deliver less voltage
        v += 0.01 * (uniform2(device_key, ms) - 0.5)
        return min(4.25, max(3.0, v))


@dataclass(frozen=True, slots=True)
class Sky:
    """District-wide quantities at one instant (see ``Climate.sky``)."""

    days: float  # local days since the epoch
    doy: float
    solar_hour: float
    air_mean: float  # seasonal mean + synoptic anomaly, °C
    half_range: float  # half the diurnal temperature range
    diurnal: float  # diurnal shape, -1..1
    soil_mean: float
    soil_half_range: float
    soil_diurnal: float
    dew_depression: float
    sun: float  # sine of the sun's elevation
    cloud: float
    wind: float  # m/s before the village's exposure
    fertiliser: float  # EC added by spring fertiliser, dS/m
    day_length: float  # hours
