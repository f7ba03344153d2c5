# Generates tests/testdata/strftime_cases.json from Python's time.strftime (glibc).
import time, os, json, calendar, sys
def utc(y,mo,d,h=0,mi=0,s=0): return calendar.timegm((y,mo,d,h,mi,s,0,0,0))
zones = {
 "UTC": [0, -1, utc(2000,1,1), utc(2024,2,29,12,0,0), utc(2026,1,1,0,0,0), utc(2026,11,22,10,30,0), utc(2027,1,1,0,0,0), utc(2024,12,30,0,0,0), utc(2038,1,19,3,14,8), utc(2100,3,1,23,59,59)],
 "Europe/Berlin": [utc(2026,3,29,0,59,59), utc(2026,3,29,1,0,0), utc(2026,10,25,0,59,59), utc(2026,10,25,1,0,0), utc(2026,12,31,23,30,0)],
 "America/New_York": [utc(2026,3,8,6,59,59), utc(2026,3,8,7,0,0), utc(2026,11,1,5,59,59), utc(2026,11,1,6,0,0), utc(2027,1,1,4,59,59), utc(2027,1,1,5,0,0)],
 "Australia/Lord_Howe": [utc(2026,4,4,14,59,59), utc(2026,4,4,15,0,0), utc(2026,10,3,15,29,59), utc(2026,10,3,15,30,0)],
 "Asia/Kolkata": [utc(2024,12,29,18,29,59), utc(2024,12,29,18,30,0), utc(2026,11,22,5,0,0)],
 "Asia/Tokyo": [utc(2026,11,22,1,30,0)],
 "Asia/Shanghai": [utc(2021,1,3,16,0,0)],
 "Europe/Dublin": [utc(2026,1,15,12,0,0), utc(2026,7,15,12,0,0)],
}
formats = ["%Y-%m-%d %H:%M:%S", "%a %A %b %B %h", "%c", "%x", "%X", "%D", "%F", "%T", "%R", "%r",
 "%C %y %Y", "%G %g %V", "%j", "%U %W", "%u %w", "%p %I %l %k", "%e|%-e|%_d|%0e|%-d", "%z %Z", "%s",
 "%n%t%%", "%P", "%^a %^B %^p %^Z %^c", "%#a %#A %#b %#p %#Z %#c", "%-H %_H %-I %_I %-m %_m %-M %-S %-j %_j",
 "%Ec %EC %Ex %EX %Ey %EY %Ez %EZ", "%Od %Oe %OH %OI %Om %OM %OS %Ou %OU %OV %Ow %OW %Oy %Ob %OB %Oh",
 "%-z %_z %0z", "%Y年%m月%d日 %H時%M分", "Время: %H:%M", "%-%", "%-G %-V %-U %-W %-C", "%k%l", "%-k %-l %0k %0l",
 "%Y-%m-%dT%H:%M:%S%z", "%d/%b/%Y:%H:%M:%S %z", "%a, %d %b %Y %H:%M:%S %Z"]
cases = []
for z, ts in zones.items():
    os.environ['TZ'] = z; time.tzset()
    for t in ts:
        cases.append({"zone": z, "t": t, "local": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(t)),
                      "out": {f: time.strftime(f, time.localtime(t)) for f in formats}})
doc = {"generator": "python3 %s (glibc %s)" % (sys.version.split()[0], os.confstr('CS_GNU_LIBC_VERSION')), "cases": cases}
json.dump(doc, open(sys.argv[1], 'w'), ensure_ascii=False, indent=1)
print(len(cases), "instants x", len(formats), "formats")
