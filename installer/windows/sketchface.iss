; Inno Setup 6 script for the SketchFace Workstation one-dir build (dist\SketchFace\).
;
; Build on Windows after `py -3.11 installer\build.py` (which also renders build\icons\sketchface.ico):
;   "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" /DAppVersion=0.1.0 installer\windows\sketchface.iss
; Output: dist\SketchFace-Setup-<version>.exe plus dist\SketchFace-Setup-<version>-*.bin slices (the
; bundle is several GB; a single setup file is limited to about 2 GB).
;
; User data is never touched: galleries, cases, models, settings and logs live under
; %LOCALAPPDATA%\SketchFace (platformdirs, see engine/paths.py) or wherever SKETCHFACE_HOME /
; SKETCHFACE_*_DIR point, and the uninstaller removes only the program folder it installed.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "SketchFace Workstation"
#define AppExe "SketchFace.exe"
#define Bundle "..\..\dist\SketchFace"

[Setup]
; Never change AppId: upgrades and the uninstaller find earlier installs by it.
AppId={{6E1C7A52-3F0B-4C39-9B8E-5A2D4F1C7E93}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=SketchFace
AppVerName={#AppName} {#AppVersion}
DefaultDirName={autopf}\SketchFace
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-machine by default (IT departments deploy it); an examiner without admin rights may choose a
; per-user install in the dialog.
PrivilegesRequired=admin
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=SketchFace-Setup-{#AppVersion}
SetupIconFile=..\..\build\icons\sketchface.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
Compression=lzma2/normal
SolidCompression=no
DiskSpanning=yes
DiskSliceSize=max
WizardStyle=modern
CloseApplications=yes
RestartApplications=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the whole bundle: a library left over from the previous version could be loaded
; instead of the new one. Only the program's own folder is cleaned, never user data.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"
Name: "{autoprograms}\{#AppName} (command line)"; Filename: "{cmd}"; Parameters: "/K ""{app}\{#AppExe}"" --help"; WorkingDir: "{userdocs}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Files the app may create inside its own folder at run time (none expected); user data stays.
Type: dirifempty; Name: "{app}"
