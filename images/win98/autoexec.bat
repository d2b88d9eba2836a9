@ECHO OFF
REM loco: run Windows 98 setup from the hard disk without questions.
REM build.sh puts this on the CD's own boot floppy image.
PATH A:\;C:\WIN98
C:
CD \WIN98
SETUP.EXE C:\WIN98\MSBATCH.INF /IS /IQ /NM /NF /IE
